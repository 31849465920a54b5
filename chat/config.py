"""Settings, read from the environment here and nowhere else in `chat/`, split by concern.

- `ClientSettings`: who answers and how to reach them (key, provider, retries, timeouts);
- `TurnOptions` (chat/options.py): the defaults of each turn (model, prompt, limits, thinking);
- `Guards`: what one visitor or the whole app may spend;
- `Settings`: the three together, plus where conversations and files are kept and for how long.
Each is checked once, where it is read. Server settings belong to the UI (ui/server.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from chat import env
from chat.limits import QuotaRules
from chat.options import DEFAULT_MODEL, TurnOptions

# The IDs differ per provider; set your own as needed. Claude Sonnet 5.5 is `claude-sonnet-5-5` on
# Vertex AI (no `@date` suffix, unlike the 4.x models) and `anthropic.claude-sonnet-5-5` on Bedrock,
# here behind the `global.` cross-region inference profile.
DEFAULT_VERTEX_MODEL = "claude-sonnet-5-5"
DEFAULT_BEDROCK_MODEL = "global.anthropic.claude-sonnet-5-5"
PROVIDERS = ("anthropic", "vertex", "bedrock", "offline")
MODEL_VARIABLES = {"anthropic": "CHAT_MODEL", "vertex": "CHAT_VERTEX_MODEL", "bedrock": "CHAT_BEDROCK_MODEL"}
DEFAULT_MODELS = {
    "anthropic": DEFAULT_MODEL,
    "vertex": DEFAULT_VERTEX_MODEL,
    "bedrock": DEFAULT_BEDROCK_MODEL,
}


@dataclass(frozen=True)
class ClientSettings:
    """How to reach Claude; the keys are never shown in a repr."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    provider: str = "anthropic"
    force_offline: bool = False
    offline_delay: float = 0.04
    vertex_project_id: str | None = None
    vertex_region: str | None = None
    aws_region: str | None = None
    bedrock_api_key: str | None = field(default=None, repr=False)
    max_retries: int = 2
    read_timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: env.Env) -> ClientSettings:
        """Read the client settings (see .env.example)."""
        provider = env.choice(environ, "CHAT_PROVIDER", PROVIDERS, "anthropic")
        return cls(
            api_key=env.optional(environ, "ANTHROPIC_API_KEY"),
            base_url=env.optional(environ, "ANTHROPIC_BASE_URL"),
            provider=provider,
            force_offline=env.flag(environ, "CHAT_OFFLINE", default=False),
            offline_delay=env.seconds(environ, "CHAT_OFFLINE_DELAY", 0.04),
            vertex_project_id=env.optional(environ, "ANTHROPIC_VERTEX_PROJECT_ID"),
            vertex_region=env.optional(environ, "CLOUD_ML_REGION"),
            aws_region=env.optional(environ, "AWS_REGION") or env.optional(environ, "AWS_DEFAULT_REGION"),
            bedrock_api_key=env.optional(environ, "AWS_BEARER_TOKEN_BEDROCK"),
            max_retries=env.whole_number(environ, "CHAT_MAX_RETRIES", 2),
            read_timeout=env.positive_seconds(environ, "CHAT_READ_TIMEOUT", 30.0),
        )

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
        names = {"vertex": "Claude on Vertex AI", "bedrock": "Claude on Amazon Bedrock"}
        return names.get(self.provider, "Anthropic API")


@dataclass(frozen=True)
class Guards:
    """What a visitor, an address or the whole app may spend; 0 turns a limit off where it says so."""

    max_input_chars: int = 50_000
    rate_limit_per_minute: int = 20  # messages a minute per visitor (or logged-in user); 0: off
    daily_token_budget: int = 2_000_000  # tokens a UTC day, the whole app; 0: off
    max_streams: int = 100
    max_streams_per_visitor: int = 2
    rate_limit_per_address: int = 120  # messages a minute per client address; 0: off
    visitor_daily_tokens: int = 200_000  # tokens a UTC day per visitor; 0: off
    max_history_messages: int = 400  # 200 turns; see .env.example for why
    max_load_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: env.Env) -> Guards:
        """Read the guards (see .env.example)."""
        return cls(
            max_input_chars=env.positive_int(environ, "CHAT_MAX_INPUT_CHARS", 50_000),
            rate_limit_per_minute=env.whole_number(environ, "CHAT_RATE_LIMIT_PER_MINUTE", 20),
            daily_token_budget=env.whole_number(environ, "CHAT_DAILY_TOKEN_BUDGET", 2_000_000),
            max_streams=env.positive_int(environ, "CHAT_MAX_STREAMS", 100),
            max_streams_per_visitor=env.positive_int(environ, "CHAT_MAX_STREAMS_PER_VISITOR", 2),
            rate_limit_per_address=env.whole_number(environ, "CHAT_RATE_LIMIT_PER_ADDRESS", 120),
            visitor_daily_tokens=env.whole_number(environ, "CHAT_VISITOR_DAILY_TOKENS", 200_000),
            max_history_messages=env.positive_int(environ, "CHAT_MAX_HISTORY_MESSAGES", 400),
            max_load_bytes=env.positive_int(environ, "CHAT_MAX_LOAD_MB", 10) * 1024 * 1024,
        )

    @property
    def quota(self) -> QuotaRules:
        """The rates and budgets these guards set."""
        return QuotaRules(
            per_minute=self.rate_limit_per_minute,
            per_address=self.rate_limit_per_address,
            daily_tokens=self.daily_token_budget,
            owner_daily_tokens=self.visitor_daily_tokens,
        )


SPACES_DATA_DIR = Path("/data")  # where a Hugging Face Space mounts its persistent storage


def default_data_dir(environ: env.Env) -> Path:
    """`/data` on a Space with persistent storage mounted, else `./data`."""
    on_spaces = environ.get("SYSTEM") == "spaces"
    if on_spaces and SPACES_DATA_DIR.is_dir() and os.access(SPACES_DATA_DIR, os.W_OK):
        return SPACES_DATA_DIR
    return Path("data")


@dataclass(frozen=True)
class Settings:
    """Everything the service needs: the client, the turn defaults, the guards, where data is kept."""

    client: ClientSettings = field(default_factory=ClientSettings)
    defaults: TurnOptions = field(default_factory=TurnOptions)
    guards: Guards = field(default_factory=Guards)
    data_dir: Path = Path("data")
    database: str | None = field(default=None, repr=False)  # a URL may hold a password
    retention_days: int = 30  # 0 keeps conversations for ever
    replica: str | None = None  # this process's name among replicas sharing one database

    @classmethod
    def from_env(cls, environ: env.Env | None = None) -> Settings:
        """Read every service setting from the environment (os.environ by default)."""
        environ = os.environ if environ is None else environ
        client = ClientSettings.from_env(environ)
        provider = client.provider if client.provider in MODEL_VARIABLES else "anthropic"
        model = env.text(environ, MODEL_VARIABLES[provider], DEFAULT_MODELS[provider])
        database = env.optional(environ, "CHAT_DATABASE_URL")
        if database is not None:
            from chat.store import database_url  # checked now, so a bad URL stops the start

            database_url(database)
        return cls(
            client=client,
            defaults=TurnOptions.from_env(environ, model),
            guards=Guards.from_env(environ),
            data_dir=Path(env.optional(environ, "CHAT_DATA_DIR") or default_data_dir(environ)),
            database=database,
            retention_days=env.whole_number(environ, "CHAT_RETENTION_DAYS", 30),
            replica=env.optional(environ, "CHAT_REPLICA_NAME"),
        )

    @property
    def database_url(self) -> str:
        """The store's URL: CHAT_DATABASE_URL, or a SQLite file in the data folder."""
        return self.database or f"sqlite:///{(self.data_dir / 'chats.db').as_posix()}"

    @property
    def offline(self) -> bool:
        """True when replies come from the built-in offline model."""
        return self.client.offline
