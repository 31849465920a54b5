"""`python app.py` as a user runs it: a subprocess on a free port, its output collected as it prints."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port, wait_until_serving

ROOT = Path(__file__).parent.parent


class AppProcess:
    """A running `python app.py`: where it serves, and what it has printed so far."""

    def __init__(self, url: str, process: subprocess.Popen[str]) -> None:
        self.url = url
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def output(self) -> str:
        """Everything the app printed (stdout and stderr) so far."""
        return "".join(self.lines)

    def wait_for_output(self, text: str, timeout: float = 30) -> str:
        """Wait until the app has printed this text; return the output."""
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.05)
        assert text in self.output, f"app.py never printed {text!r}; it printed:\n{self.output}"
        return self.output

    def stop(self) -> None:
        """Stop the app and wait for its output to end."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)
        self._reader.join(10)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)


@contextmanager
def app_py(*args: str, **env: str) -> Iterator[AppProcess]:
    """Run `python app.py *args` with no API key, these extra env vars and a fast offline model.

    Its data goes to a new temporary folder unless CHAT_DATA_DIR is given (never the checkout's).
    """
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    environment["CHAT_DATA_DIR"] = tempfile.mkdtemp(prefix="chat-app-data-")
    environment.update(
        GRADIO_SERVER_PORT=str(port),
        CHAT_OFFLINE_DELAY="0.005",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    environment.update(env)
    process = subprocess.Popen(
        [sys.executable, "app.py", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = AppProcess(f"http://127.0.0.1:{port}/", process)
    try:
        wait_until_serving(running.url, process)
        yield running
    finally:
        running.stop()
