"""Settings, read from the environment here and nowhere else in `chat/`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    max_retries: int = 2
    read_timeout: float = 30.0
    max_input_chars: int = 50_000
    rate_limit_per_minute: int = 20
    daily_token_budget: int = 2_000_000
    username: str | None = None
    password: str | None = field(default=None, repr=False)

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
            max_retries=_whole_number(env, "CHAT_MAX_RETRIES", 2),
            read_timeout=_positive_float(env, "CHAT_READ_TIMEOUT", 30.0),
            max_input_chars=_positive_int(env, "CHAT_MAX_INPUT_CHARS", 50_000),
            rate_limit_per_minute=_whole_number(env, "CHAT_RATE_LIMIT_PER_MINUTE", 20),
            daily_token_budget=_whole_number(env, "CHAT_DAILY_TOKEN_BUDGET", 2_000_000),
            **_credentials(env),
        )

    @property
    def auth(self) -> tuple[str, str] | None:
        """The (username, password) the page asks for, or None when it is open."""
        if self.username and self.password:
            return (self.username, self.password)
        return None


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ChatError(f"{name} must be a whole number above 0, not {raw!r}.")
    return int(raw)


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ChatError(f"{name} must be a whole number (0 or more; 0 turns it off), not {raw!r}.")
    return int(raw)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ChatError(f"{name} must be a number of seconds above 0, not {raw!r}.")
    return value


def _credentials(env: Mapping[str, str]) -> dict[str, str | None]:
    username = env.get("APP_USERNAME", "").strip() or None
    password = env.get("APP_PASSWORD", "") or None
    if (username is None) != (password is None):
        raise ChatError("Set both APP_USERNAME and APP_PASSWORD to protect the page, or neither.")
    return {"username": username, "password": password}


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
