"""Settings, read from the environment here and nowhere else in `chat/`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from chat.errors import ChatError

DEFAULT_MODEL = "claude-sonnet-5-5"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")


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
    thinking: bool = False
    effort: str | None = None  # None: the model's default effort
    prompt_caching: bool = True

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
            thinking=_flag(env, "CHAT_THINKING", default=False),
            effort=_effort(env, "CHAT_EFFORT"),
            prompt_caching=_flag(env, "CHAT_PROMPT_CACHING", default=True),
        )


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in TRUE_WORDS | FALSE_WORDS:
        raise ChatError(f"{name} must be 1 or 0 (on or off), not {raw!r}.")
    return raw in TRUE_WORDS


def _effort(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip().lower()
    if not raw or raw == "default":
        return None
    if raw not in EFFORT_LEVELS:
        raise ChatError(f"{name} must be one of {', '.join(EFFORT_LEVELS)} (or empty), not {raw!r}.")
    return raw


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
