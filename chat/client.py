"""Building the Anthropic client the rest of the app is handed."""

from __future__ import annotations

import anthropic
import httpx2

from chat.config import ClientSettings
from chat.offline import offline_transport
from chat.providers import bedrock_client, client_options, vertex_client

OFFLINE_BASE_URL = "http://offline.invalid"


ChatClient = anthropic.AsyncAnthropic | anthropic.AsyncAnthropicVertex | anthropic.AsyncAnthropicBedrock


def make_client(settings: ClientSettings, http_client: httpx2.AsyncClient | None = None) -> ChatClient:
    """The async client for the settings' provider (the offline model when there is no key).

    Raises ChatError at once when the provider's extra, settings or credentials are missing.
    """
    if settings.offline:
        transport = offline_transport(settings.offline_delay)
        return anthropic.AsyncAnthropic(
            api_key="offline",
            base_url=OFFLINE_BASE_URL,
            http_client=httpx2.AsyncClient(transport=transport, base_url=OFFLINE_BASE_URL),
        )
    if settings.provider == "vertex":
        return vertex_client(settings, http_client)
    if settings.provider == "bedrock":
        return bedrock_client(settings, http_client)
    return anthropic.AsyncAnthropic(
        api_key=settings.api_key,
        base_url=settings.base_url,
        http_client=http_client,
        **client_options(settings),
    )
