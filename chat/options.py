"""Per-turn options: what one request asks of Claude, and the defaults the environment sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat import env
from chat.errors import ChatError, ErrorKind
from chat.models import ALL_EFFORT_LEVELS, ModelChoice

DEFAULT_MODEL = "claude-sonnet-5-5"
EFFORT_LEVELS = ALL_EFFORT_LEVELS
# "summarized" returns the thinking text; newer models default to "omitted" (a signature only).
ADAPTIVE_THINKING = {"type": "adaptive", "display": "summarized"}


@dataclass(frozen=True)
class TurnOptions:
    """The model, prompt and limits of one request; checked when built."""

    model: str = DEFAULT_MODEL
    max_tokens: int = 4096
    system_prompt: str = ""
    thinking: bool = False
    effort: str | None = None  # None: the model's default
    prompt_caching: bool = True

    @classmethod
    def from_env(cls, environ: env.Env, model: str = DEFAULT_MODEL) -> TurnOptions:
        """The defaults the environment asks for (`model` is the provider's default model id)."""
        effort = env.text(environ, "CHAT_EFFORT", "default").lower()
        if effort not in ("default", *EFFORT_LEVELS):
            rule = f"must be one of {', '.join(EFFORT_LEVELS)} (or empty)"
            raise env.config_error("CHAT_EFFORT", effort, rule)
        return cls(
            model=model,
            max_tokens=env.positive_int(environ, "CHAT_MAX_TOKENS", 4096),
            system_prompt=env.text(environ, "CHAT_SYSTEM_PROMPT"),
            thinking=env.flag(environ, "CHAT_THINKING", default=False),
            effort=None if effort == "default" else effort,
            prompt_caching=env.flag(environ, "CHAT_PROMPT_CACHING", default=True),
        )

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ChatError(ErrorKind.BAD_OPTIONS, "No model was chosen.", option="model")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ChatError(
                ErrorKind.BAD_OPTIONS,
                f"Max tokens must be a whole number above 0, not {self.max_tokens!r}.",
                option="max_tokens",
            )
        if self.effort is not None and self.effort not in EFFORT_LEVELS:
            raise ChatError(
                ErrorKind.BAD_OPTIONS,
                f"Effort must be one of {', '.join(EFFORT_LEVELS)}, not {self.effort!r}.",
                option="effort",
            )

    def request(self, model: ModelChoice | None) -> dict[str, Any]:
        """The Messages API arguments these options set (all but the messages), for this model."""
        request: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens}
        if self.prompt_caching:
            request["cache_control"] = {"type": "ephemeral"}  # caches the whole prefix, turn after turn
        if self.system_prompt:
            request["system"] = self.system_prompt
        if self.thinking:
            request["thinking"] = dict(ADAPTIVE_THINKING)
        elif model is not None and model.can_disable_thinking:
            request["thinking"] = {"type": "disabled"}
        if self.effort and model is not None and self.effort in model.effort_levels:
            request["output_config"] = {"effort": self.effort}
        return request

    @classmethod
    def from_request(cls, request: dict[str, Any], fallback: TurnOptions) -> TurnOptions:
        """The options a recorded request was sent with (what it leaves out comes from `fallback`)."""
        thinking = request.get("thinking")
        effort = (request.get("output_config") or {}).get("effort")
        system = request.get("system", "")
        return cls(
            model=str(request.get("model") or fallback.model),
            max_tokens=request.get("max_tokens", fallback.max_tokens),
            system_prompt=system if isinstance(system, str) else fallback.system_prompt,
            thinking=isinstance(thinking, dict) and thinking.get("type") in ("adaptive", "enabled"),
            effort=effort if effort in EFFORT_LEVELS else None,
            prompt_caching="cache_control" in request,
        )
