"""Each provider's client, built from settings, and the request it sends (recorded, never sent)."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anthropic
import httpx2
import pytest

import app
from chat import ChatError, ChatService, ClientSettings, Settings, make_client
from tests.conftest import make_settings
from tests.upstream import FIXTURES, TEST_KEY

ROOT = Path(__file__).parent.parent
TEXT_SSE = (FIXTURES / "text.sse").read_bytes()
TEXT_ANSWER = "Hello! How can I help you today?"


class Recorder:
    """An httpx2 client whose transport records each request and answers with a canned stream."""

    def __init__(self, body: bytes = TEXT_SSE, content_type: str = "text/event-stream") -> None:
        self.requests: list[httpx2.Request] = []
        self.body, self.content_type = body, content_type
        self.client = httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(200, headers={"content-type": self.content_type}, content=self.body)

    @property
    def body_sent(self) -> dict:
        return json.loads(self.requests[0].content)


async def answer(client, settings: Settings) -> str:
    """Ask "hi" through a ChatService over this client; return the whole answer."""
    service = ChatService(client, settings)
    async with service.stream_reply(service.conversation(), "hi") as reply:
        return await reply.collect()


def aws_event_stream(sse: bytes) -> bytes:
    """The SSE events re-encoded as Bedrock streams them: AWS event-stream frames of base64 JSON chunks."""
    return b"".join(
        _aws_frame(json.loads(line[6:])) for line in sse.splitlines() if line.startswith(b"data: ")
    )


def _aws_frame(event: dict) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()}).encode()
    headers = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        for name, value in _frame_headers()
    )
    prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _frame_headers() -> Iterable[tuple[str, str]]:
    return [(":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")]


@pytest.fixture
def google_token_file(tmp_path, monkeypatch) -> str:
    """Application Default Credentials holding a fresh token, so nothing is fetched from Google."""
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    info = {
        "type": "authorized_user",
        "client_id": "test-client",
        "client_secret": "test-secret",
        "refresh_token": "test-refresh",
        "token": "ya29.test-token",
        "expiry": expiry,
    }
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return "ya29.test-token"


@pytest.fixture
def aws_isolated(tmp_path, monkeypatch):
    """No AWS configuration but what a test sets; the instance metadata service is never asked."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def vertex_settings() -> Settings:
    env = {
        "CHAT_PROVIDER": "vertex",
        "ANTHROPIC_VERTEX_PROJECT_ID": "my-project",
        "CLOUD_ML_REGION": "us-east5",
    }
    return Settings.from_env(env)


# --- settings -----------------------------------------------------------------------------------


def test_the_provider_defaults_to_the_anthropic_api():
    assert Settings.from_env({"ANTHROPIC_API_KEY": "sk-x"}).client.provider == "anthropic"


def test_each_provider_reads_its_own_model_variable():
    env = {"CHAT_MODEL": "a", "CHAT_VERTEX_MODEL": "v@1", "CHAT_BEDROCK_MODEL": "b-v1:0"}
    models = [
        Settings.from_env({**env, "CHAT_PROVIDER": p}).defaults.model
        for p in ("anthropic", "vertex", "bedrock")
    ]
    assert models == ["a", "v@1", "b-v1:0"]


def test_each_provider_defaults_to_claude_sonnet_5_5_in_its_own_id_format():
    vertex = Settings.from_env({"CHAT_PROVIDER": "vertex"}).defaults.model
    bedrock = Settings.from_env({"CHAT_PROVIDER": "bedrock"}).defaults.model
    assert vertex == "claude-sonnet-5-5"  # Vertex AI's ID for it: no @date suffix
    assert bedrock == "global.anthropic.claude-sonnet-5-5"  # the global inference profile


def test_an_unknown_provider_is_refused_with_the_choices():
    with pytest.raises(ChatError, match="CHAT_PROVIDER must be one of anthropic, vertex, bedrock, offline"):
        Settings.from_env({"CHAT_PROVIDER": "azure"})


def test_the_offline_provider_uses_the_offline_model_even_with_a_key():
    assert Settings.from_env({"CHAT_PROVIDER": "offline", "ANTHROPIC_API_KEY": "sk-x"}).offline


def test_vertex_and_bedrock_need_no_anthropic_key():
    assert not make_settings(provider="vertex").offline and not make_settings(provider="bedrock").offline


# --- the request each provider sends -------------------------------------------------------------


async def test_anthropic_sends_the_model_in_the_body_to_v1_messages():
    recorder = Recorder()
    settings = make_settings(api_key=TEST_KEY)
    assert await answer(make_client(settings.client, recorder.client), settings) == TEXT_ANSWER
    request = recorder.requests[0]
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert recorder.body_sent["model"] == "claude-sonnet-5-5" and recorder.body_sent["stream"] is True


async def test_vertex_puts_project_region_and_model_in_the_url_and_signs_with_google_credentials(
    google_token_file,
):
    recorder = Recorder()
    settings = vertex_settings()
    client = make_client(settings.client, recorder.client)
    assert isinstance(client, anthropic.AsyncAnthropicVertex)
    assert await answer(client, settings) == TEXT_ANSWER
    request = recorder.requests[0]
    assert str(request.url) == (
        "https://us-east5-aiplatform.googleapis.com/v1/projects/my-project/locations/us-east5"
        "/publishers/anthropic/models/claude-sonnet-5-5:streamRawPredict"
    )
    assert request.headers["authorization"] == f"Bearer {google_token_file}"
    assert "model" not in recorder.body_sent
    assert recorder.body_sent["anthropic_version"] == "vertex-2023-10-16"
    assert recorder.body_sent["messages"] == [{"role": "user", "content": "hi"}]


async def test_vertex_global_region_uses_the_global_endpoint(google_token_file):
    recorder = Recorder()
    settings = make_settings(
        provider="vertex", vertex_project_id="p", vertex_region="global", model="claude-x@1"
    )
    await answer(make_client(settings.client, recorder.client), settings)
    assert str(recorder.requests[0].url).startswith(
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global/"
    )


async def test_bedrock_signs_with_aws_credentials_and_puts_the_model_in_the_url(aws_isolated, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTNOTREAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    recorder = Recorder(aws_event_stream(TEXT_SSE), "application/vnd.amazon.eventstream")
    settings = make_settings(
        provider="bedrock", aws_region="us-east-1", model="global.anthropic.claude-x-v1:0"
    )
    client = make_client(settings.client, recorder.client)
    assert isinstance(client, anthropic.AsyncAnthropicBedrock)
    assert await answer(client, settings) == TEXT_ANSWER
    request = recorder.requests[0]
    assert str(request.url) == (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/global.anthropic.claude-x-v1:0/invoke-with-response-stream"
    )
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTESTNOTREAL/")
    assert "/us-east-1/bedrock/aws4_request" in request.headers["authorization"]
    assert "model" not in recorder.body_sent and "stream" not in recorder.body_sent
    assert recorder.body_sent["anthropic_version"] == "bedrock-2023-05-31"


async def test_bedrock_with_an_api_key_sends_it_as_a_bearer_token(aws_isolated):
    recorder = Recorder(aws_event_stream(TEXT_SSE), "application/vnd.amazon.eventstream")
    settings = make_settings(
        provider="bedrock", aws_region="eu-west-1", bedrock_api_key="bedrock-key-not-real"
    )
    assert await answer(make_client(settings.client, recorder.client), settings) == TEXT_ANSWER
    assert recorder.requests[0].headers["authorization"] == "Bearer bedrock-key-not-real"


# --- clear startup messages ------------------------------------------------------------------------


def test_vertex_without_its_extra_says_what_to_install(monkeypatch, google_token_file):
    monkeypatch.setitem(sys.modules, "google.auth", None)  # what an environment without the extra sees
    with pytest.raises(ChatError, match=r"pip install 'anthropic\[vertex\]'"):
        make_client(vertex_settings().client)


def test_bedrock_without_its_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ChatError, match=r"pip install 'anthropic\[bedrock\]'"):
        make_client(ClientSettings(provider="bedrock", aws_region="us-east-1"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ClientSettings(provider="vertex", vertex_project_id="p"), "needs CLOUD_ML_REGION"),
        (ClientSettings(provider="vertex", vertex_region="us-east5"), "needs ANTHROPIC_VERTEX_PROJECT_ID"),
    ],
)
def test_vertex_without_region_or_project_names_the_variable(settings, message):
    with pytest.raises(ChatError, match=message):
        make_client(settings)


def test_bedrock_without_credentials_says_how_to_provide_them(aws_isolated):
    with pytest.raises(ChatError, match=r"No AWS credentials found for Bedrock\. Set AWS_ACCESS_KEY_ID"):
        make_client(ClientSettings(provider="bedrock", aws_region="us-east-1"))


def test_bedrock_without_a_region_asks_for_aws_region(aws_isolated, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTNOTREAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    with pytest.raises(ChatError, match="needs an AWS region: set AWS_REGION"):
        make_client(ClientSettings(provider="bedrock"))


def test_the_app_exits_with_the_message_when_the_provider_cannot_start(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env: a developer's own must not leak in
    monkeypatch.setenv("CHAT_PROVIDER", "vertex")
    monkeypatch.delenv("CLOUD_ML_REGION", raising=False)
    with pytest.raises(SystemExit, match="Configuration error: CHAT_PROVIDER=vertex needs CLOUD_ML_REGION"):
        app.main([])


@pytest.mark.parametrize("command", [[str(ROOT / "app.py")], ["-m", "chat", "hi"]])
def test_missing_google_credentials_stop_the_app_and_terminal_with_one_line(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "CHAT_"))}
    env.update(
        CHAT_PROVIDER="vertex",
        CLOUD_ML_REGION="us-east5",
        ANTHROPIC_VERTEX_PROJECT_ID="my-project",
        CLOUDSDK_CONFIG=str(tmp_path / "no-gcloud"),  # no gcloud login on this machine
        NO_GCE_CHECK="true",  # and never ask a metadata server
        GCE_METADATA_HOST="127.0.0.1:9",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Configuration error: No Google Cloud credentials found for Vertex AI.")
