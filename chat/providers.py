"""Claude on Google Vertex AI and Amazon Bedrock: clients checked at startup, not at the first message."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import httpx2
from anthropic import AsyncAnthropicBedrock, AsyncAnthropicVertex

from chat.config import ClientSettings
from chat.errors import ChatError, ErrorKind

# The request-body versions the providers document ("anthropic_version" goes in the body there):
# Vertex AI: https://docs.claude.com/en/api/claude-on-vertex-ai ; Bedrock: the Claude Messages API page
# of the Bedrock user guide. This SDK would otherwise send its own first-party version string.
VERTEX_API_VERSION = "vertex-2023-10-16"
BEDROCK_API_VERSION = "bedrock-2023-05-31"
CONNECT_TIMEOUT = 10.0
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def vertex_client(
    settings: ClientSettings, http_client: httpx2.AsyncClient | None = None
) -> AsyncAnthropicVertex:
    """An AsyncAnthropicVertex for these settings, its credentials found now."""
    google_auth = _extra("google.auth", "vertex")
    if not settings.vertex_region:
        raise ChatError(
            ErrorKind.CONFIG,
            "CHAT_PROVIDER=vertex needs CLOUD_ML_REGION (a region such as us-east5, or global).",
        )
    if not settings.vertex_project_id:
        raise ChatError(
            ErrorKind.CONFIG,
            "CHAT_PROVIDER=vertex needs ANTHROPIC_VERTEX_PROJECT_ID (your Google Cloud project ID).",
        )
    try:
        credentials, _ = google_auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google_auth.exceptions.GoogleAuthError as error:
        raise ChatError(
            ErrorKind.CONFIG,
            "No Google Cloud credentials found for Vertex AI. Run `gcloud auth application-default login`, "
            f"or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file. ({error})",
        ) from None
    return AsyncAnthropicVertex(
        region=settings.vertex_region,
        project_id=settings.vertex_project_id,
        credentials=credentials,
        http_client=http_client,
        middleware=[_body_version(VERTEX_API_VERSION)],
        **client_options(settings),
    )


def bedrock_client(
    settings: ClientSettings, http_client: httpx2.AsyncClient | None = None
) -> AsyncAnthropicBedrock:
    """An AsyncAnthropicBedrock for these settings, its credentials and region found now."""
    boto3 = _extra("boto3", "bedrock")
    try:
        session = boto3.Session()
        region = settings.aws_region or session.region_name
        found = settings.bedrock_api_key or session.get_credentials()
    except Exception as error:  # botocore raises many kinds (profile not found, bad config file)
        raise ChatError(ErrorKind.CONFIG, f"The AWS configuration could not be read: {error}") from None
    if not region:
        raise ChatError(
            ErrorKind.CONFIG,
            "CHAT_PROVIDER=bedrock needs an AWS region: set AWS_REGION (for example us-east-1).",
        )
    if not found:
        raise ChatError(
            ErrorKind.CONFIG,
            "No AWS credentials found for Bedrock. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or a Bedrock API key in AWS_BEARER_TOKEN_BEDROCK.",
        )
    return AsyncAnthropicBedrock(
        aws_region=region,
        api_key=settings.bedrock_api_key,
        http_client=http_client,
        middleware=[_body_version(BEDROCK_API_VERSION)],
        **client_options(settings),
    )


def client_options(settings: ClientSettings) -> dict[str, Any]:
    """Retries and timeouts for any provider: `read_timeout` between stream bytes, so a stall fails fast."""
    timeout = httpx2.Timeout(settings.read_timeout, connect=min(CONNECT_TIMEOUT, settings.read_timeout))
    return {"max_retries": settings.max_retries, "timeout": timeout}


def _extra(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ChatError(
            ErrorKind.CONFIG,
            f"CHAT_PROVIDER={extra} needs the SDK's {extra} extra: pip install 'anthropic[{extra}]'.",
        ) from None


def _body_version(version: str) -> Callable[[Any, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]:
    async def with_documented_version(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        if isinstance(request.json, dict):
            request = request.copy(body={**request.json, "anthropic_version": version})
        return await call_next(request)

    return with_documented_version
