"""The README's claims that the code decides: they must stay true when the code changes."""

from __future__ import annotations

import re
from pathlib import Path

from anthropic._constants import ANTHROPIC_API_VERSION

from chat.config import DEFAULT_BEDROCK_MODEL, DEFAULT_VERTEX_MODEL

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
SETTING = re.compile(r'"((?:CHAT|APP)_[A-Z0-9_]+)"')


def settings_the_code_reads() -> set[str]:
    """Every CHAT_* and APP_* variable named in the app's code."""
    sources = [ROOT / "app.py", *(ROOT / "chat").glob("*.py"), *(ROOT / "ui").glob("*.py")]
    return {name for path in sources for name in SETTING.findall(path.read_text())}


def test_the_replay_command_sends_the_api_version_the_sdk_sends():
    (version,) = set(re.findall(r"anthropic-version: ([0-9-]+)", README))
    assert version == ANTHROPIC_API_VERSION


def test_the_provider_defaults_in_the_readme_are_the_codes():
    assert f"`{DEFAULT_VERTEX_MODEL}`" in README
    assert f"`{DEFAULT_BEDROCK_MODEL}`" in README


def test_every_setting_the_code_reads_is_documented_in_the_readme_and_env_example():
    names = settings_the_code_reads()
    assert len(names) > 20  # the pattern still finds them
    assert sorted(name for name in names if name not in README) == []
    assert sorted(name for name in names if name not in ENV_EXAMPLE) == []
