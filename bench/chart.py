"""The benchmark's chart: first-update latency and wall-time ratio against concurrent users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render straight to a file
import matplotlib.pyplot as plt

from bench import turns

STYLE = {"baseline": ("tab:red", "baseline: seed's sync loop, Gradio defaults"), "app": ("tab:blue", "app")}


def draw_chart(result: dict[str, Any], path: Path) -> None:
    """Two panels: first update p50/p99 (log scale) and wall vs one chat, baseline against app;
    a third, bytes per message against turn, when they were counted (bench/turns.py)."""
    panels = 3 if result.get("turns") else 2
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.4), constrained_layout=True)
    latency, wall = axes[0], axes[1]
    for name, rows in result["runs"].items():
        color, label = STYLE.get(name, ("tab:green" if name.startswith("app, ") else "tab:gray", name))
        users = [row["users"] for row in rows]
        p50 = [_ms(row["first_update_ms"]["p50"]) for row in rows]
        p99 = [_ms(row["first_update_ms"]["p99"]) for row in rows]
        latency.plot(users, p50, "o-", color=color, label=f"{label}, p50")
        latency.plot(users, p99, "s--", color=color, alpha=0.6, label=f"{label}, p99")
        wall.plot(users, [row["wall_ratio"] for row in rows], "o-", color=color, label=label)
    latency.axhline(250, color="gray", linestyle=":", label="target at 20 users: p50 250 ms")
    latency.set(
        yscale="log",
        xlabel="concurrent users",
        ylabel="ms (minus the upstream's first-token time)",
        title="Time to first update",
    )
    wall.axhline(1.0, color="gray", linestyle=":", label="no slowdown")
    wall.plot([20, 50], [1.3, 2.0], "k^", label="targets (20: 1.3x, 50: 2x)")
    if any(name.startswith("app, ") for name in result["runs"]):
        wall.plot([100], [2.0], "g^", label="replicas' target (100: 2x)")
    wall.set(
        yscale="log",
        xlabel="concurrent users",
        ylabel="wall time / one chat's wall time",
        title="All chats answered: wall time vs one chat",
    )
    for panel in (latency, wall):
        panel.grid(True, which="both", alpha=0.3)
        panel.legend(fontsize=8)
    if result.get("turns"):
        turns.draw_panel(axes[2], result["turns"])
    rate = result["options"]["rate"]
    figure.suptitle(
        f"{rate['deltas']} deltas of {rate['delta_chars']} chars every {rate['interval'] * 1000:.0f} ms "
        "per answer; "
        f"{result['machine']['cores']} cores, {result['machine']['cpu']}",
        fontsize=9,
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _ms(value: float | None) -> float:
    return float("nan") if value is None else max(value, 0.1)  # log scale: clamp tiny or negative
