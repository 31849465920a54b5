"""One conversation's own state: its exchanges and its running cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chat.exchange import Exchange
from chat.options import TurnOptions
from chat.reply import Reply
from chat.usage import Spend


@dataclass
class Conversation:
    """A list of exchanges, oldest first; a screen shows a prefix of them, by position.

    Every message sent gets an exchange, refused ones too (marked failed, never sent), so the
    n-th message on any screen is `exchanges[n]`. Retry, undo and edit cut the list with `keep`.
    It holds no client or app-wide part: the `ChatService` acts on it.
    """

    exchanges: list[Exchange] = field(default_factory=list)
    spend: Spend = field(default_factory=Spend)
    last_reply: Reply | None = None

    def keep(self, count: int) -> None:
        """Keep the first `count` exchanges (a screen that shows fewer was retried, undone or edited)."""
        del self.exchanges[max(count, 0) :]

    def clear(self) -> None:
        """Forget every exchange and start the running total again."""
        self.exchanges.clear()
        self.spend = Spend()

    def replace(self, exchanges: Sequence[Exchange]) -> None:
        """Continue from these exchanges instead (a loaded conversation)."""
        self.exchanges = list(exchanges)

    def options(self, fallback: TurnOptions) -> TurnOptions:
        """The options of the latest exchange sent (`fallback` before the first)."""
        for exchange in reversed(self.exchanges):
            if exchange.request.get("model"):
                return TurnOptions.from_request(exchange.request, fallback)
        return fallback
