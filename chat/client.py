"""Building the Anthropic client the rest of the app is handed."""

from __future__ import annotations

import anthropic
import httpx2

from chat.config import Settings
from chat.offline import OfflineTransport

OFFLINE_BASE_URL = "http://offline.invalid"
CONNECT_TIMEOUT = 10.0


def make_client(settings: Settings) -> anthropic.AsyncAnthropic:
    """The async client for these settings: the offline model when there is no key."""
    if settings.offline:
        transport = OfflineTransport(delay=settings.offline_delay)
        return anthropic.AsyncAnthropic(
            api_key="offline",
            base_url=OFFLINE_BASE_URL,
            http_client=httpx2.AsyncClient(transport=transport, base_url=OFFLINE_BASE_URL),
        )
    return anthropic.AsyncAnthropic(
        api_key=settings.api_key,
        base_url=settings.base_url,
        max_retries=settings.max_retries,
        timeout=request_timeout(settings),
    )


def request_timeout(settings: Settings) -> httpx2.Timeout:
    """How long to wait: `read_timeout` between bytes of a stream, so a stall fails fast."""
    return httpx2.Timeout(settings.read_timeout, connect=min(CONNECT_TIMEOUT, settings.read_timeout))
