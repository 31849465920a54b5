"""The naive baseline: the seed's sync streaming loop in a ChatInterface with Gradio's defaults.

Kept as the seed wrote it (a sync client, one yield per delta, default concurrency and threads),
so the benchmark can report the app's figures as ratios against it. Not for real use.
Reads ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL (the benchmark points it at its loopback API) and
GRADIO_SERVER_PORT from the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import gradio as gr

client = anthropic.Anthropic()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def respond(message: str, history: list[dict[str, Any]]) -> Iterator[str]:
    """The seed's loop: one yield of the accumulated text per delta."""
    messages = [{"role": m["role"], "content": _text(m["content"])} for m in history]
    messages.append({"role": "user", "content": message})
    partial = ""
    with client.messages.stream(model="claude-sonnet-5-5", max_tokens=4096, messages=messages) as stream:
        for text in stream.text_stream:
            partial += text
            yield partial


if __name__ == "__main__":
    gr.ChatInterface(respond).launch()
