"""Settings, read from the environment here and nowhere else in `chat/`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat.errors import ChatError

DEFAULT_MODEL = "claude-sonnet-5-5"
# The IDs differ per provider; these are the newest each provider's docs list (set your own as needed):
# Vertex AI uses `name@date`, Bedrock `anthropic.name-date-v1:0` behind a `global.` or region profile.
DEFAULT_VERTEX_MODEL = "claude-sonnet-4-5@20250929"
DEFAULT_BEDROCK_MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
PROVIDERS = ("anthropic", "vertex", "bedrock", "offline")
MODEL_VARIABLES = {"anthropic": "CHAT_MODEL", "vertex": "CHAT_VERTEX_MODEL", "bedrock": "CHAT_BEDROCK_MODEL"}
DEFAULT_MODELS = {
    "anthropic": DEFAULT_MODEL,
    "vertex": DEFAULT_VERTEX_MODEL,
    "bedrock": DEFAULT_BEDROCK_MODEL,
}
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
    provider: str = "anthropic"
    vertex_project_id: str | None = None
    vertex_region: str | None = None
    aws_region: str | None = None
    bedrock_api_key: str | None = field(default=None, repr=False)
    max_retries: int = 2
    read_timeout: float = 30.0
    max_input_chars: int = 50_000
    rate_limit_per_minute: int = 20
    daily_token_budget: int = 2_000_000
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    thinking: bool = False
    effort: str | None = None  # None: the model's default effort
    prompt_caching: bool = True
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
        if self.force_offline or self.provider == "offline":
            return True
        return self.provider == "anthropic" and not self.api_key

    @property
    def backend(self) -> str:
        """Who answers, in words: the offline model, the Anthropic API, Vertex AI or Bedrock."""
        if self.offline:
            return "offline model"
        return {"vertex": "Claude on Vertex AI", "bedrock": "Claude on Amazon Bedrock"}.get(
            self.provider, "Anthropic API"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from environment variables (see .env.example)."""
        env = os.environ if env is None else env
        provider = _provider(env)
        return cls(
            api_key=env.get("ANTHROPIC_API_KEY", "").strip() or None,
            base_url=env.get("ANTHROPIC_BASE_URL", "").strip() or None,
            model=_model(env, provider),
            max_tokens=_positive_int(env, "CHAT_MAX_TOKENS", 4096),
            system_prompt=env.get("CHAT_SYSTEM_PROMPT", "").strip(),
            force_offline=env.get("CHAT_OFFLINE", "").strip().lower() in TRUE_WORDS,
            offline_delay=_non_negative_float(env, "CHAT_OFFLINE_DELAY", 0.04),
            provider=provider,
            vertex_project_id=env.get("ANTHROPIC_VERTEX_PROJECT_ID", "").strip() or None,
            vertex_region=env.get("CLOUD_ML_REGION", "").strip() or None,
            aws_region=(env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", "")).strip() or None,
            bedrock_api_key=env.get("AWS_BEARER_TOKEN_BEDROCK", "").strip() or None,
            max_retries=_whole_number(env, "CHAT_MAX_RETRIES", 2),
            read_timeout=_positive_float(env, "CHAT_READ_TIMEOUT", 30.0),
            max_input_chars=_positive_int(env, "CHAT_MAX_INPUT_CHARS", 50_000),
            rate_limit_per_minute=_whole_number(env, "CHAT_RATE_LIMIT_PER_MINUTE", 20),
            daily_token_budget=_whole_number(env, "CHAT_DAILY_TOKEN_BUDGET", 2_000_000),
            **_credentials(env),
            thinking=_flag(env, "CHAT_THINKING", default=False),
            effort=_effort(env, "CHAT_EFFORT"),
            prompt_caching=_flag(env, "CHAT_PROMPT_CACHING", default=True),
            **_capacity(env),
        )

    @property
    def auth(self) -> tuple[str, str] | None:
        """The (username, password) the page asks for, or None when it is open."""
        if self.username and self.password:
            return (self.username, self.password)
        return None


def load_env_file(path: str | Path = ".env") -> None:
    """Put a .env file's settings into the environment without overriding it (as the web app does)."""
    for name, value in read_env_file(Path(path)).items():
        os.environ.setdefault(name, value)


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


def _provider(env: Mapping[str, str]) -> str:
    provider = env.get("CHAT_PROVIDER", "").strip().lower() or "anthropic"
    if provider not in PROVIDERS:
        raise ChatError(f"CHAT_PROVIDER must be one of {', '.join(PROVIDERS)}, not {provider!r}.")
    return provider


def _model(env: Mapping[str, str], provider: str) -> str:
    provider = provider if provider in MODEL_VARIABLES else "anthropic"
    return env.get(MODEL_VARIABLES[provider], "").strip() or DEFAULT_MODELS[provider]


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
    return _count(env, name, default, minimum=1)


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    return _count(env, name, default, minimum=0)


def _count(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        rule = "above 0" if minimum else "(0 or more; 0 turns it off)"
        raise ChatError(f"{name} must be a whole number {rule}, not {raw!r}.")
    return int(raw)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    return _seconds(env, name, default, above_zero=True)


def _non_negative_float(env: Mapping[str, str], name: str, default: float) -> float:
    return _seconds(env, name, default, above_zero=False)


def _seconds(env: Mapping[str, str], name: str, default: float, *, above_zero: bool) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")  # fails both checks below
    if not (0 < value < float("inf") if above_zero else value >= 0):
        rule = "above 0" if above_zero else "(0 or more)"
        raise ChatError(f"{name} must be a number of seconds {rule}, not {raw!r}.")
    return value


def _credentials(env: Mapping[str, str]) -> dict[str, str | None]:
    username = env.get("APP_USERNAME", "").strip() or None
    password = env.get("APP_PASSWORD", "") or None
    if (username is None) != (password is None):
        raise ChatError("Set both APP_USERNAME and APP_PASSWORD to protect the page, or neither.")
    return {"username": username, "password": password}
