"""Settings, read from the environment here and nowhere else in `chat/`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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

    @property
    def offline(self) -> bool:
        """True when replies come from the built-in offline model."""
        return self.force_offline or not self.api_key

    @classmethod
    def from_env_and_file(cls, path: str | Path = ".env") -> Settings:
        """Settings from the environment, a .env file filling in what it lacks (as the web app does)."""
        return cls.from_env({**read_env_file(Path(path)), **os.environ})

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
        )


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=value lines of a .env file (comments, `export` and quotes allowed); empty if none."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ChatError(f"Could not read {path}: {error.strerror}.") from error
    values = {}
    for line in lines:
        name, equals, value = line.strip().removeprefix("export ").partition("=")
        if equals and name.strip() and not name.lstrip().startswith("#"):
            value = value.strip()
            quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
            values[name.strip()] = value[1:-1] if quoted else value.split(" #")[0].strip()
    return values


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
