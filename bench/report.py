"""The benchmark's results as Markdown tables (written next to the JSON as benchmark.md)."""

from __future__ import annotations

from typing import Any

from bench import turns

COLUMNS = [
    ("users", lambda r: r["users"]),
    ("wall s", lambda r: r["wall_s"]),
    ("wall / one chat", lambda r: f"{r['wall_ratio']}x"),
    ("first update p50 / p99 ms", lambda r: _pair(r["first_update_ms"])),
    ("after first token p50 / p99 ms", lambda r: _pair(r["first_update_after_token_ms"])),
    ("updates/s per chat", lambda r: r["updates_per_s_per_chat"]),
    ("bytes per char", lambda r: r["bytes_per_char"]),
    ("app CPU s per 1k deltas", lambda r: r["cpu_s_per_1000_deltas"]),
    ("completed / errors", lambda r: f"{r['completed']}/{r['chats']} / {r['errors']}"),
]


def markdown(result: dict[str, Any]) -> str:
    """One table per app, the bytes per message by turn, then the targets with their verdicts."""
    parts = []
    for name, rows in result["runs"].items():
        parts.append(f"**{name}**\n")
        parts.append("| " + " | ".join(title for title, _ in COLUMNS) + " |")
        parts.append("|" + " --- |" * len(COLUMNS))
        parts += ["| " + " | ".join(str(cell(row)) for _, cell in COLUMNS) + " |" for row in rows]
        parts.append("")
    if result.get("turns"):
        parts += turns.markdown(result["turns"])
    parts.append("| target | figure | verdict |")
    parts.append("| --- | --- | --- |")
    for target in result["targets"]:
        verdict = {True: "met", False: "**not met**", None: "not measured"}[target["met"]]
        parts.append(f"| {target['target']} | {target['figure']} | {verdict} |")
    return "\n".join(parts) + "\n"


def _pair(percentiles: dict[str, float | None]) -> str:
    return f"{percentiles['p50']} / {percentiles['p99']}"
