"""The repository is a valid Hugging Face Space, and `SYSTEM=spaces python app.py` serves the chat."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import httpx
import yaml
from gradio_client import Client
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.app_process import app_py
from tests.conftest import answer_text, chat, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY
from ui.page import EPHEMERAL_NOTE

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def space_card() -> dict[str, Any]:
    """The YAML front matter of README.md, which Spaces reads as the Space's configuration."""
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must open with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def pinned(name: str) -> str:
    """The exact version pyproject.toml pins for a runtime dependency."""
    for line in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name:
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{name} must be pinned exactly, not {specifier}"
            return specifier.version
    raise AssertionError(f"{name} is not a dependency in pyproject.toml")


def test_the_readme_front_matter_declares_a_gradio_space_running_app_py():
    card = space_card()
    assert card["sdk"] == "gradio"
    assert card["app_file"] == "app.py" and (ROOT / card["app_file"]).is_file()


def test_the_space_runs_the_gradio_version_the_project_pins():
    assert str(space_card()["sdk_version"]) == pinned("gradio")


def test_the_space_python_version_is_one_the_project_supports():
    python_version = str(space_card()["python_version"])
    assert python_version in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_requirements_txt_lists_exactly_the_pyproject_dependencies():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    requirements = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert requirements == set(PYPROJECT["project"]["dependencies"])


def test_starting_on_spaces_sends_nothing_to_claude(monkeypatch, loopback_api: LoopbackMessagesAPI):
    # On Spaces Gradio caches examples at startup by default, which would call Claude with the key.
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("GRADIO_CACHE_EXAMPLES", "true")
    with launched_app(make_settings(api_key=TEST_KEY, base_url=loopback_api.url)) as url:
        assert httpx.get(url).status_code == 200
    assert loopback_api.requests == []


def test_system_spaces_python_app_py_serves_the_chat():
    # Spaces itself listens on 0.0.0.0; tests stay on loopback.
    with app_py(SYSTEM="spaces", GRADIO_SERVER_NAME="127.0.0.1") as app:
        assert "Claude chat" in httpx.get(app.url).text
        assert EPHEMERAL_NOTE in httpx.get(f"{app.url}config").text  # its data is not under /data
        updates = chat(Client(app.url, verbose=False), "hello from a Space")
        assert len(updates) >= 3
        assert "\u201chello from a Space\u201d" in answer_text(updates[-1])
