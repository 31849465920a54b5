"""Usage, cost and speed of answers, and a conversation's running total."""

from __future__ import annotations

import json

import pytest

from chat.usage import PRICES_FILE, Prices, PriceTable, Spend, TokenUsage, TurnStats, estimate_tokens
from chat.wire import ScriptedMessage, Stream, TextBlock
from tests.conftest import Chat

SONNET = Prices(input=2.0, output=10.0, cache_write_5m=2.5, cache_write_1h=4.0, cache_read=0.1)


def api_usage(**fields: object) -> dict[str, object]:
    base = {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": None}
    base |= {"cache_creation_input_tokens": None, "cache_creation": None}
    return base | fields


def stats(cost: float | None, output: int = 10, estimated: bool = False) -> TurnStats:
    return TurnStats("m", TokenUsage(input=5, output=output), cost, estimated, None, None)


def test_cost_prices_input_output_cache_reads_and_writes_at_their_own_rates():
    usage = TokenUsage(input=1_000_000, output=100_000, cache_read=2_000_000, cache_write_5m=400_000)
    assert SONNET.cost(usage) == pytest.approx(2.0 + 1.0 + 0.2 + 1.0)


def test_one_hour_cache_writes_are_priced_apart_from_five_minute_ones():
    usage = TokenUsage.from_api(
        api_usage(cache_creation_input_tokens=300, cache_creation={"ephemeral_1h_input_tokens": 100})
    )
    assert (usage.cache_write_5m, usage.cache_write_1h, usage.cache_write) == (200, 100, 300)
    assert SONNET.cost(usage) == pytest.approx((200 * 2.5 + 100 * 4.0) / 1e6)


def test_usage_without_cache_fields_counts_no_cache_tokens():
    usage = TokenUsage.from_api(api_usage(input_tokens=12, output_tokens=34))
    assert usage == TokenUsage(input=12, output=34)


def test_haiku_prompts_over_100k_tokens_are_priced_at_the_higher_band():
    haiku = PriceTable.load().for_model("claude-haiku-5-5")
    short = TokenUsage(input=50_000, cache_read=50_000, output=1_000)
    long = TokenUsage(input=50_000, cache_read=50_001, output=1_000)
    assert haiku.cost(short) == pytest.approx((50_000 * 0.1 + 50_000 * 0.01 + 1_000 * 0.5) / 1e6)
    assert haiku.cost(long) == pytest.approx((50_000 * 0.5 + 50_001 * 0.05 + 1_000 * 2.5) / 1e6)


def test_the_price_table_covers_the_offered_models_and_notes_its_source_and_date():
    table = PriceTable.load()
    raw = json.loads(PRICES_FILE.read_text())
    assert table.source.startswith("https://") and table.checked == raw["checked"]
    for model in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"):
        assert table.for_model(model) is not None


def test_a_dated_model_id_is_priced_as_its_alias():
    table = PriceTable.load()
    assert table.for_model("claude-haiku-4-5-20251001") == table.for_model("claude-haiku-4-5")


def test_an_unknown_model_has_no_price():
    assert PriceTable.load().for_model("claude-unknown-9") is None


def test_estimated_tokens_are_about_four_characters_each():
    assert (estimate_tokens(""), estimate_tokens("abcd"), estimate_tokens("abcde")) == (0, 1, 2)


def test_spend_adds_every_answer_and_remembers_estimates_and_unpriced_ones():
    spend = Spend().plus(stats(0.5)).plus(stats(None)).plus(stats(0.25, estimated=True))
    assert (spend.answers, spend.cost, spend.unpriced, spend.estimated) == (3, 0.75, 1, True)
    assert spend.usage == TokenUsage(input=15, output=30)


async def test_a_conversation_totals_usage_and_cost_over_its_answers():
    message = ScriptedMessage(
        [TextBlock(["one ", "two"])], input_tokens=100, usage_extra={"cache_read_input_tokens": 1_000}
    )
    chat = Chat(*(Stream.of(message) for _ in range(2)))
    for text in ("first", "second"):
        await chat.send(text)
    spend = chat.conversation.spend
    assert spend.answers == 2
    assert spend.usage == TokenUsage(input=200, output=4, cache_read=2_000)
    assert spend.cost == pytest.approx(2 * (100 * 2.0 + 2 * 10.0 + 1_000 * 0.1) / 1e6)
