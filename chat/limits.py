"""A cap on how many answers stream from the API at once: beyond it, refuse rather than queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from chat.errors import ChatError

log = logging.getLogger(__name__)

BUSY_MESSAGE = "The chat is busy: too many answers are streaming right now. Try again in a moment."


class StreamSlots:
    """At most `capacity` streams at once; one more is refused with a ChatError at once."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.in_use = 0
        self._lock = threading.Lock()  # sync UI frameworks may stream from several threads

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Take a slot for the duration of the block, or raise ChatError when none is free."""
        with self._lock:
            if self.in_use >= self.capacity:
                log.warning("refused a reply: all %d stream slots are in use", self.capacity)
                raise ChatError(BUSY_MESSAGE)
            self.in_use += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_use -= 1
