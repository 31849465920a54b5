"""Settings, read from the environment here and nowhere else in `chat/`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.errors import ChatError

DEFAULT_MODEL = "claude-sonnet-5-5"
TRUE_WORDS = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """How the chat talks to Claude; the API key is never shown in a repr."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    max_tokens: int = 4096
    system_prompt: str = ""
    force_offline: bool = False
    offline_delay: float = 0.04
    # Performance and capacity (README "Performance"): how often the page is redrawn, how many
    # answers may stream at once, and Gradio's own limits, set on purpose rather than by default.
    update_interval: float = 0.05
    max_streams: int = 100
    concurrency_limit: int = 100
    max_threads: int = 200
    queue_size: int = 200

    @property
    def offline(self) -> bool:
        """True when replies come from the built-in offline model."""
        return self.force_offline or not self.api_key

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from environment variables (see .env.example)."""
        env = os.environ if env is None else env
        return cls(
            api_key=env.get("ANTHROPIC_API_KEY", "").strip() or None,
            base_url=env.get("ANTHROPIC_BASE_URL", "").strip() or None,
            model=env.get("CHAT_MODEL", "").strip() or DEFAULT_MODEL,
            max_tokens=_positive_int(env, "CHAT_MAX_TOKENS", 4096),
            system_prompt=env.get("CHAT_SYSTEM_PROMPT", "").strip(),
            force_offline=env.get("CHAT_OFFLINE", "").strip().lower() in TRUE_WORDS,
            offline_delay=_non_negative_float(env, "CHAT_OFFLINE_DELAY", 0.04),
            **_capacity(env),
        )


def _capacity(env: Mapping[str, str]) -> dict[str, Any]:
    concurrency_limit = _positive_int(env, "APP_CONCURRENCY_LIMIT", 100)
    max_threads = _positive_int(env, "APP_MAX_THREADS", 2 * concurrency_limit)  # page + /chat API
    if max_threads < concurrency_limit:
        raise ChatError(
            f"APP_MAX_THREADS ({max_threads}) must be at least APP_CONCURRENCY_LIMIT ({concurrency_limit}): "
            "Gradio runs no more events at once than it has threads."
        )
    return {
        "update_interval": _non_negative_float(env, "CHAT_UPDATE_INTERVAL", 0.05),
        "max_streams": _positive_int(env, "CHAT_MAX_STREAMS", 100),
        "concurrency_limit": concurrency_limit,
        "max_threads": max_threads,
        "queue_size": _positive_int(env, "APP_QUEUE_SIZE", 200),
    }


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ChatError(f"{name} must be a whole number above 0, not {raw!r}.")
    return int(raw)


def _non_negative_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ChatError(f"{name} must be a number of seconds (0 or more), not {raw!r}.")
    return value
