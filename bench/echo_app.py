"""The memory benchmark's reference: a trivial ChatInterface that echoes each message, Gradio's defaults.

Not for real use. Reads GRADIO_SERVER_PORT from the environment (`bench/memory.py` sets it).
"""

from __future__ import annotations

from typing import Any

import gradio as gr


def echo(message: str, history: list[dict[str, Any]]) -> str:
    """The message, back."""
    return message


if __name__ == "__main__":
    gr.ChatInterface(echo).launch(server_name="127.0.0.1")
