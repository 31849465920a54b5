"""The benchmark still runs end to end (tiny N, short answers): its shape, never its timings."""

from __future__ import annotations

import json

import pytest

import app
from bench import page_client, turns
from bench.run import Options, run_benchmark
from bench.upstream import TokenRate
from ui import render

USERS = (1, 2)
RATE = TokenRate(deltas=12, delta_chars=6, interval=0.005, first_token=0.01)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    options = Options(users=USERS, rate=RATE, single_runs=2, out=out, chat_timeout=120)
    return run_benchmark(options), out


def test_the_benchmark_writes_its_json_chart_and_tables(result):
    figures, out = result
    assert json.loads((out / "benchmark.json").read_text()) == figures
    assert (out / "benchmark.png").read_bytes().startswith(b"\x89PNG")
    assert "| target | figure | verdict |" in (out / "benchmark.md").read_text()


def test_both_apps_are_measured_at_every_n(result):
    figures, _ = result
    assert set(figures["runs"]) == {"baseline", "app"}
    for rows in figures["runs"].values():
        assert [row["users"] for row in rows] == list(USERS)


def test_every_chat_completes_with_the_whole_answer(result):
    figures, _ = result
    for rows in figures["runs"].values():
        for row in rows:
            chats = row["users"] * (2 if row["users"] == 1 else 1)  # N = 1 runs twice here
            assert (row["chats"], row["completed"], row["errors"]) == (chats, chats, 0)
            assert row["deltas"] == chats * RATE.deltas


def test_the_figures_are_present_and_not_negative(result):
    figures, _ = result
    for rows in figures["runs"].values():
        for row in rows:
            numbers = [
                row["wall_s"],
                row["wall_ratio"],
                row["first_update_wait_ms"]["p50"],
                row["first_update_wait_ms"]["p99"],
                row["first_update_after_token_ms"]["p50"],
                row["updates_per_s_per_chat"],
                row["bytes_per_char"],
                row["cpu_s_per_1000_deltas"],
            ]
            assert all(isinstance(n, int | float) and n >= 0 for n in numbers), row


def test_one_chat_is_the_reference_for_the_wall_ratio(result):
    figures, _ = result
    assert [rows[0]["wall_ratio"] for rows in figures["runs"].values()] == [1.0, 1.0]


def test_the_targets_are_listed_with_a_verdict_where_measured(result):
    figures, _ = result
    verdicts = {target["target"]: target["met"] for target in figures["targets"]}
    assert len(verdicts) == 7
    assert verdicts["1 user: bytes per character at most 15"] in (True, False)
    assert verdicts["20 users: wall at most 1.3x one chat"] is None  # N = 20 was not run here


def test_the_machine_is_described(result):
    figures, _ = result
    assert figures["machine"]["cores"] >= 1 and figures["machine"]["cpu"]


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    out = tmp_path_factory.mktemp("turns")
    options = Options(rate=RATE, out=out, chat_timeout=120, turns=(1, 3), only_turns=True)
    return run_benchmark(options), out


def test_only_turns_runs_no_app_at_n_users(counted):
    figures, _ = counted
    assert figures["runs"] == {}
    assert [row["turn"] for row in figures["turns"]["rows"]] == [1, 3]


def test_every_turn_of_the_counted_conversation_is_answered_in_full(counted):
    figures, _ = counted
    assert figures["turns"]["turns_not_answered_in_full"] == []
    assert figures["turns"]["messages_on_screen"] >= 3 * 2  # a question and an answer per turn


def test_each_messages_breakdown_sums_to_its_totals(counted):
    figures, _ = counted
    for row in figures["turns"]["rows"]:
        parts = row["parts"].values()
        assert sum(part["received"] for part in parts) == row["received"]
        assert sum(part["sent"] for part in parts) == row["sent"]


def test_each_message_receives_and_sends_bytes_in_every_part_of_its_answer(counted):
    figures, _ = counted
    for row in figures["turns"]["rows"]:
        assert row["received"] > 0 and row["sent"] > 0
        for part in ("_append_message_to_history", "_submit_fn first value", "_submit_fn process_completed"):
            assert row["parts"][part]["received"] > 0, (row["turn"], part)


def test_a_later_turn_costs_more_as_the_whole_chat_is_resent(counted):
    figures, _ = counted
    first, third = figures["turns"]["rows"]
    assert third["received"] > first["received"] and third["ratio"] > 1


def test_the_bytes_per_turn_are_in_the_tables_and_the_chart(counted):
    _, out = counted
    assert "| turn | bytes received | bytes sent | received / turn 1 |" in (out / "benchmark.md").read_text()
    assert (out / "benchmark.png").read_bytes().startswith(b"\x89PNG")


def test_the_turn_40_target_is_not_measured_on_a_shorter_conversation(counted):
    figures, _ = counted
    verdicts = {target["target"]: target["met"] for target in figures["targets"]}
    assert verdicts[turns.target(None)["target"]] is None


def test_the_page_client_knows_the_apps_failure_notice():
    assert page_client.NOTICE_TITLE == render.NOTICE_TITLE == app.NOTICE_TITLE
