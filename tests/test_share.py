"""`python app.py --share`: the flag asks Gradio for a tunnel, and a failed tunnel is reported clearly."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
import httpx
import pytest
from gradio import networking
from gradio_client import Client

import app
from tests.app_process import app_py
from tests.conftest import answer_text, chat, free_port

SHARE_FAILED = "Could not open a share link"


@pytest.fixture
def served(monkeypatch, tmp_path) -> list[gr.Blocks]:
    """Apps main() served; instead of blocking, each is checked to answer locally, then closed."""
    demos: list[gr.Blocks] = []

    def serve_briefly(demo: gr.Blocks) -> None:
        demos.append(demo)
        assert httpx.get(demo.local_url, timeout=10).status_code == 200
        demo.close()

    monkeypatch.setattr(gr.Blocks, "block_thread", serve_briefly)
    # A developer's .env must not leak into the tests.
    monkeypatch.setattr(app, "load_dotenv", lambda *path, **options: None)
    monkeypatch.setenv("CHAT_OFFLINE", "1")
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path / "data"))  # not the checkout's data/
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    return demos


def test_the_share_flag_opens_a_tunnel_to_the_local_app(monkeypatch, served, caplog):
    tunnels: list[dict[str, Any]] = []

    def fake_tunnel(**request: Any) -> str:  # the boundary: the real one dials the share server
        tunnels.append(request)
        return "https://0123456789abcdef.gradio.live"

    monkeypatch.setattr(networking, "setup_tunnel", fake_tunnel)
    port = free_port()
    app.main(["--share", "--port", str(port)])

    assert [tunnel["local_port"] for tunnel in tunnels] == [port]
    assert served[0].share_url == "https://0123456789abcdef.gradio.live"
    assert SHARE_FAILED not in caplog.text


def test_without_the_share_flag_no_tunnel_is_opened(monkeypatch, served):
    monkeypatch.setattr(networking, "setup_tunnel", lambda **request: pytest.fail("a tunnel was opened"))
    app.main(["--port", str(free_port())])
    assert served[0].share_url is None


def test_a_failed_tunnel_is_logged_with_the_local_url_that_still_works(monkeypatch, served, caplog):
    def unreachable(**request: Any) -> str:
        raise RuntimeError("Could not get share link from Gradio API Server.")

    monkeypatch.setattr(networking, "setup_tunnel", unreachable)
    with caplog.at_level(logging.ERROR, logger="app"):
        app.main(["--share", "--port", str(free_port())])

    (record,) = [r for r in caplog.records if SHARE_FAILED in r.getMessage()]
    assert served[0].local_url in record.getMessage()


def test_python_app_py_share_offline_reports_the_failure_and_keeps_serving():
    # A dead proxy on loopback makes the tunnel request fail at once, with or without internet.
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    proxies = {"HTTPS_PROXY": dead_proxy, "HTTP_PROXY": dead_proxy, "NO_PROXY": "127.0.0.1,localhost"}
    with app_py("--share", **proxies) as running:
        output = running.wait_for_output(SHARE_FAILED)
        updates = chat(Client(running.url, verbose=False), "still here?")
    assert f"{SHARE_FAILED} (the tunnel to the share server failed)" in output
    assert f"still serves on {running.url}" in output
    assert "\u201cstill here?\u201d" in answer_text(updates[-1])


def test_the_start_up_log_names_this_apps_share_flag_not_gradios_launch_argument(served, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="app"):
        app.main(["--port", str(free_port())])

    assert "python app.py --share" in caplog.text
    assert "share=True" not in capsys.readouterr().out


def test_the_offline_start_up_asks_no_model_list_and_says_who_answers(served, caplog):
    with caplog.at_level(logging.INFO):
        app.main(["--port", str(free_port())])

    assert "/v1/models" not in caplog.text
    assert "the offline demo model (no ANTHROPIC_API_KEY set)" in caplog.text
