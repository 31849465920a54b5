"""Attached files, kept once by content on disk; exchanges refer to them, sessions never hold them."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from anthropic.types import ContentBlockParam

from chat.errors import ChatError, ErrorKind


@dataclass(frozen=True)
class FileRef:
    """One attached file as an exchange records it: its name, type, size and content hash."""

    name: str
    media_type: str
    sha256: str
    size: int

    @property
    def is_image(self) -> bool:
        """True for images, False for PDF documents."""
        return self.media_type.startswith("image/")

    def to_dict(self) -> dict[str, Any]:
        """The reference as plain data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileRef:
        """A reference read back from a record."""
        return cls(str(data["name"]), str(data["media_type"]), str(data["sha256"]), int(data["size"]))


class FileStore:
    """Files by their SHA-256 under one folder: the same file attached twice is stored once."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="chat-files-"))

    def put(self, name: str, media_type: str, data: bytes) -> FileRef:
        """Keep a checked file and return its reference."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")  # one per writer
            temporary.write_bytes(data)
            temporary.replace(path)  # atomic: a reader never sees half a file
        return FileRef(name, media_type, digest, len(data))

    def read(self, ref: FileRef) -> bytes:
        """The file's bytes; a ChatError when it is gone."""
        try:
            return self.path(ref.sha256).read_bytes()
        except OSError:
            raise ChatError(ErrorKind.REFUSED, f"{ref.name} is no longer stored.", file=ref.name) from None

    def path(self, digest: str) -> Path:
        """Where a file with this hash lives."""
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
        return self.directory / digest[:2] / digest

    def remove_unreferenced(self, referenced: set[str], older_than_seconds: float = 86_400.0) -> int:
        """Delete stored files no exchange refers to, left untouched this long; return how many.

        A file just attached is kept (its exchange may not be saved yet), so only old ones go.
        """
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self.directory.glob("??/*"):
            try:
                if path.name not in referenced and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # removed meanwhile, or not ours to remove
        return removed

    def block(self, ref: FileRef) -> ContentBlockParam:
        """The image or document content block that carries a stored file to Claude."""
        data = base64.b64encode(self.read(ref)).decode("ascii")
        source = {"type": "base64", "media_type": ref.media_type, "data": data}
        if ref.is_image:
            return {"type": "image", "source": source}  # type: ignore[return-value,typeddict-item]
        return {"type": "document", "source": source, "title": ref.name}  # type: ignore[return-value,typeddict-item]
