"""Per-turn options: what the settings panel may change between one answer and the next."""

from __future__ import annotations

from dataclasses import dataclass

from chat.config import EFFORT_LEVELS, Settings
from chat.errors import ChatError


@dataclass(frozen=True)
class TurnOptions:
    """The model, prompt and limits for one request; built fresh for every turn."""

    model: str
    max_tokens: int
    system_prompt: str = ""
    thinking: bool = False
    effort: str | None = None  # None: the model's default
    prompt_caching: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> TurnOptions:
        """The options the environment asks for (the panel's defaults)."""
        return cls(
            model=settings.model,
            max_tokens=settings.max_tokens,
            system_prompt=settings.system_prompt,
            thinking=settings.thinking,
            effort=settings.effort,
            prompt_caching=settings.prompt_caching,
        )

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ChatError("Choose a model in Settings first.")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ChatError(f"Max tokens must be a whole number above 0, not {self.max_tokens!r}.")
        if self.effort is not None and self.effort not in EFFORT_LEVELS:
            raise ChatError(f"Effort must be one of {', '.join(EFFORT_LEVELS)}, not {self.effort!r}.")
