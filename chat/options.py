"""Per-turn options: what one request asks of Claude, and the defaults the environment sets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chat import env
from chat.errors import ChatError, ErrorKind
from chat.models import ALL_EFFORT_LEVELS, ModelChoice

DEFAULT_MODEL = "claude-sonnet-5-5"
EFFORT_LEVELS = ALL_EFFORT_LEVELS
# "summarized" returns the thinking text; newer models default to "omitted" (a signature only).
ADAPTIVE_THINKING = {"type": "adaptive", "display": "summarized"}
# The newest server-tool versions SDK 2.12 types on the (non-beta) Messages API: no beta header.
WEB_SEARCH_TOOL = "web_search_20260318"
WEB_FETCH_TOOL = "web_fetch_20260318"
WEB_SEARCH, WEB_FETCH = "web_search", "web_fetch"  # the tools' names, as Claude calls them


@dataclass(frozen=True)
class WebTools:
    """App-wide limits of the web search and web fetch tools: uses per request, which domains."""

    max_uses: int = 5
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: env.Env) -> WebTools:
        """CHAT_WEB_MAX_USES, CHAT_WEB_ALLOWED_DOMAINS and CHAT_WEB_BLOCKED_DOMAINS (one of the two)."""
        allowed = env.domains(environ, "CHAT_WEB_ALLOWED_DOMAINS")
        blocked = env.domains(environ, "CHAT_WEB_BLOCKED_DOMAINS")
        if allowed and blocked:
            rule = "must be empty when CHAT_WEB_ALLOWED_DOMAINS is set (the API takes one list or the other)"
            raise env.config_error("CHAT_WEB_BLOCKED_DOMAINS", ",".join(blocked), rule)
        return cls(env.positive_int(environ, "CHAT_WEB_MAX_USES", 5), allowed, blocked)

    def __post_init__(self) -> None:
        if self.allowed_domains and self.blocked_domains:
            raise ChatError(
                ErrorKind.BAD_OPTIONS,
                "Web tools take allowed domains or blocked domains, not both.",
                option="web_domains",
            )

    def definition(self, tool_type: str, name: str, **extra: Any) -> dict[str, Any]:
        """One server tool's entry in `tools`, with these limits."""
        tool: dict[str, Any] = {"type": tool_type, "name": name, "max_uses": self.max_uses, **extra}
        if self.allowed_domains:
            tool["allowed_domains"] = list(self.allowed_domains)
        if self.blocked_domains:
            tool["blocked_domains"] = list(self.blocked_domains)
        return tool


@dataclass(frozen=True)
class TurnOptions:
    """The model, prompt and limits of one request; checked when built."""

    model: str = DEFAULT_MODEL
    max_tokens: int = 4096
    system_prompt: str = ""
    thinking: bool = False
    effort: str | None = None  # None: the model's default
    prompt_caching: bool = True
    web_search: bool = False
    web_fetch: bool = False
    web_tools: WebTools = field(default_factory=WebTools)  # app-wide, never from a page

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
            web_search=env.flag(environ, "CHAT_WEB_SEARCH", default=False),
            web_fetch=env.flag(environ, "CHAT_WEB_FETCH", default=False),
            web_tools=WebTools.from_env(environ),
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
        if self.server_tools:
            request["tools"] = self.server_tools
        return request

    @property
    def server_tools(self) -> list[dict[str, Any]]:
        """The definitions of the server tools switched on (web search, web fetch), for `tools`."""
        tools = []
        if self.web_search:
            tools.append(self.web_tools.definition(WEB_SEARCH_TOOL, WEB_SEARCH))
        if self.web_fetch:
            tools.append(self.web_tools.definition(WEB_FETCH_TOOL, WEB_FETCH, citations={"enabled": True}))
        return tools

    @property
    def server_tool_names(self) -> frozenset[str]:
        """The names of the server tools switched on: the ones past answers may have used and keep."""
        return frozenset(tool["name"] for tool in self.server_tools)

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
            web_search=WEB_SEARCH in _server_tools(request.get("tools")),
            web_fetch=WEB_FETCH in _server_tools(request.get("tools")),
            web_tools=fallback.web_tools,
        )


def _server_tools(tools: Any) -> set[str]:
    """The names of the web tools a recorded request carried (their type says it is the server's)."""
    entries: Iterable[Any] = tools if isinstance(tools, list) else ()
    return {
        str(tool.get("name"))
        for tool in entries
        if isinstance(tool, Mapping) and str(tool.get("type", "")).startswith(f"{tool.get('name')}_")
    }
