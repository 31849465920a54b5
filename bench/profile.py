"""Where the app's CPU goes during one benchmark round: py-spy samples, grouped by who runs them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Checked in order: a sample counts for the first group whose marker is anywhere in its stack.
GROUPS = [
    ("Anthropic SDK: reading and parsing the API's event stream", ("anthropic/", "httpx2/", "httpcore2/")),
    ("Gradio queue: running the generator, postprocessing, diffs", ("gradio/queueing.py",)),
    ("HTTP handling of the page's requests (FastAPI, uvicorn)", ("fastapi/", "starlette/", "uvicorn/")),
    ("This app's code (chat/, ui/, app.py)", ("/chat/", "/ui/", "app.py")),
]
OTHER = "Event loop, threads and the rest"


@contextmanager
def sampled(pid: int, raw_path: Path, rate: int = 100) -> Iterator[None]:
    """Record py-spy samples (only while the GIL is held: CPU, not waiting) of `pid` during the block."""
    beside_python = Path(sys.executable).with_name("py-spy")  # a venv's tools need not be on PATH
    py_spy = str(beside_python) if beside_python.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy: pip install py-spy (and permission to ptrace)")
    command = [py_spy, "record", "-p", str(pid), "-o", str(raw_path), "--format", "raw"]
    command += ["--rate", str(rate), "--gil", "--nonblocking"]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attaching takes a moment; samples before it would be lost
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        recorder.wait(60)


def summarize(raw_path: Path, top: int = 15) -> dict[str, Any]:
    """Share of samples per group, and the functions most often on top of the stack."""
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        groups[next((name for name, marks in GROUPS if any(m in stack for m in marks)), OTHER)] += samples
        leaves[_short(stack.split(";")[-1])] += samples
    share = {name: round(100 * n / max(total, 1), 1) for name, n in groups.most_common()}
    hottest = {name: round(100 * n / max(total, 1), 1) for name, n in leaves.most_common(top)}
    return {"samples": total, "percent_by_group": share, "percent_self_top": hottest}


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").split("site-packages/")[-1]
    return f"{name} ({path.rsplit(':', 1)[0]})"
