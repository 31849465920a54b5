"""Building the Anthropic client the rest of the app is handed."""

from __future__ import annotations

import anthropic
import httpx2

from chat.config import Settings
from chat.offline import OfflineTransport

OFFLINE_BASE_URL = "http://offline.invalid"


def make_client(settings: Settings) -> anthropic.AsyncAnthropic:
    """The async client for these settings: the offline model when there is no key."""
    if settings.offline:
        transport = OfflineTransport(delay=settings.offline_delay)
        return anthropic.AsyncAnthropic(
            api_key="offline",
            base_url=OFFLINE_BASE_URL,
            http_client=httpx2.AsyncClient(transport=transport, base_url=OFFLINE_BASE_URL),
        )
    return anthropic.AsyncAnthropic(api_key=settings.api_key, base_url=settings.base_url)
