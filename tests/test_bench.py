"""The benchmark still runs end to end (tiny N, short answers): its shape, never its timings."""

from __future__ import annotations

import json

import pytest

import app
from bench import page_client
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
    assert len(verdicts) == 6
    assert verdicts["1 user: bytes per character at most 15"] in (True, False)
    assert verdicts["20 users: wall at most 1.3x one chat"] is None  # N = 20 was not run here


def test_the_machine_is_described(result):
    figures, _ = result
    assert figures["machine"]["cores"] >= 1 and figures["machine"]["cpu"]


def test_the_page_client_knows_the_apps_failure_notice():
    assert page_client.NOTICE_TITLE == render.NOTICE_TITLE == app.NOTICE_TITLE
