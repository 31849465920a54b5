"""Which Claude models the chat offers, and what each accepts (thinking off, effort levels)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anthropic

log = logging.getLogger(__name__)

ALL_EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
# The models overview documents a 200k-token window as the long-standing default; the 5.5 models
# have 1M (platform.claude.com/docs/en/models/haiku-5-5/overview, and the same page for each).
DEFAULT_CONTEXT_WINDOW = 200_000
CURRENT_CONTEXT_WINDOW = 1_000_000


@dataclass(frozen=True)
class ModelChoice:
    """A model the user can pick, with the request options it is known to accept."""

    id: str
    label: str
    effort_levels: tuple[str, ...] = ()  # empty: do not send an effort
    can_disable_thinking: bool = False  # False: "thinking off" leaves the field out (the model's default)
    context_window: int = DEFAULT_CONTEXT_WINDOW  # input tokens it takes (models.list: max_input_tokens)


BUILT_IN_MODELS: tuple[ModelChoice, ...] = (
    ModelChoice("claude-opus-5-5", "Claude Opus 5.5", ALL_EFFORT_LEVELS, False, CURRENT_CONTEXT_WINDOW),
    ModelChoice("claude-sonnet-5-5", "Claude Sonnet 5.5", ALL_EFFORT_LEVELS, False, CURRENT_CONTEXT_WINDOW),
    ModelChoice("claude-haiku-5-5", "Claude Haiku 5.5", ALL_EFFORT_LEVELS, False, CURRENT_CONTEXT_WINDOW),
)


def catalog(models: Sequence[ModelChoice]) -> dict[str, ModelChoice]:
    """Models by id."""
    return {model.id: model for model in models}


async def list_models(client: anthropic.AsyncAnthropic, timeout: float = 5.0) -> list[ModelChoice]:
    """The active models the API lists; the built-in list if it cannot say."""
    try:
        page = await client.with_options(max_retries=0, timeout=timeout).models.list(limit=100)
        listed = [_choice(info) for info in page.data if info.lifecycle == "active"]
    except Exception as exc:
        log.warning("models.list failed (%s: %s); offering the built-in models", type(exc).__name__, exc)
        return list(BUILT_IN_MODELS)
    return listed or list(BUILT_IN_MODELS)


def with_model(models: Sequence[ModelChoice], model_id: str) -> list[ModelChoice]:
    """The list with this model in it (first, if it had to be added)."""
    if any(model.id == model_id for model in models):
        return list(models)
    known = catalog(BUILT_IN_MODELS).get(model_id, ModelChoice(model_id, model_id))
    return [known, *models]


def context_window(models: Mapping[str, ModelChoice], model_id: str) -> int:
    """The context window of a model: as listed, as built in, or the documented default."""
    known = models.get(model_id) or catalog(BUILT_IN_MODELS).get(model_id)
    return known.context_window if known is not None else DEFAULT_CONTEXT_WINDOW


def _choice(info: Any) -> ModelChoice:
    capabilities = info.capabilities
    built_in = catalog(BUILT_IN_MODELS).get(info.id)
    window = info.max_input_tokens or (built_in.context_window if built_in else DEFAULT_CONTEXT_WINDOW)
    if capabilities is None:
        known = built_in or ModelChoice(info.id, info.display_name)
        return dataclasses.replace(known, context_window=window)
    effort = capabilities.effort
    levels = tuple(
        level
        for level in ALL_EFFORT_LEVELS
        if effort.supported and getattr(effort, level, None) is not None and getattr(effort, level).supported
    )
    disabled = capabilities.thinking.types.disabled.supported
    return ModelChoice(info.id, info.display_name, levels, disabled, context_window=window)
