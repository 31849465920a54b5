"""Whose conversations a tab sees: a visitor's random token, or the logged-in username.

A browser keeps its visitor token in localStorage (gr.BrowserState); the token is the only key
to that visitor's conversations, so it is random and unguessable, and the store sees only its
hash. A caller that brings no token (a script on the API) is a visitor for its session alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32,128}")
CONVERSATION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
SECRET_FILE = "browser-secret"


def new_token() -> str:
    """A fresh visitor token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_conversation_id() -> str:
    """An id for a conversation not stored yet (the store makes it on the first message)."""
    return secrets.token_urlsafe(16)


def visitor_owner(token: str) -> str:
    """The store's owner key for a visitor token (its hash: the store never holds the token)."""
    return "visitor:" + hashlib.sha256(token.encode("ascii")).hexdigest()


def user_owner(username: str) -> str:
    """The store's owner key for a logged-in user."""
    return "user:" + username


def is_token(value: object) -> bool:
    """True for a value shaped like a token this app hands out."""
    return isinstance(value, str) and TOKEN_PATTERN.fullmatch(value) is not None


def is_conversation_id(value: object) -> bool:
    """True for a value shaped like a conversation id this app hands out."""
    return isinstance(value, str) and CONVERSATION_ID_PATTERN.fullmatch(value) is not None


@dataclass
class Tab:
    """One browser tab's place: whose conversations it shows, and which one is open."""

    owner: str = ""
    conversation_id: str = ""
    # Set up from the browser by an event other than a page load: the session is new to this
    # process (a restart) while the page still shows the chat, and its history state is empty.
    restored: bool = False

    def settled(self) -> Tab:
        """This tab, set up if no page load did (a script's session): a visitor of its own, a new chat."""
        if not self.owner:
            self.owner = visitor_owner(new_token())
        if not self.conversation_id:
            self.conversation_id = new_conversation_id()
        return self


def browser_secret(data_dir: Path) -> str:
    """The key that encrypts what the page keeps in localStorage, kept in the data folder.

    It outlives restarts, so a browser's visitor token still opens its conversations after one.
    It reaches the browser (Gradio decrypts there): it hides the token, it does not protect it.
    """
    path = data_dir / SECRET_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(secret, encoding="ascii")
    temporary.chmod(0o600)
    try:
        os.link(temporary, path)  # the first writer wins; a second process reads the first's
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text(encoding="ascii").strip()
