"""Files the page hands Gradio to serve (exports, a stored chat's attachments), kept an hour and swept.

They live under the data dir (`downloads/`), one folder per content: the same export or attachment
asked for again reuses its folder instead of writing another copy, so disk grows with what is
different, not with how often it is asked for. A folder unused for `keep_seconds` is deleted by
the next sweep; sweeps run when the folder is first used (at start) and at most once a minute
after that, on the page's own requests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import time
import unicodedata
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

log = logging.getLogger("ui")

KEEP_SECONDS = 3600.0  # an export or a shown file is deleted an hour after it was last handed out
SWEEP_EVERY_SECONDS = 60.0
MAX_NAME_BYTES = 200  # below every common file system's 255, leaving room for Gradio's own prefixes
FALLBACK_NAME = "file"
GRADIO_CACHE_FOLDER = "gradio"  # under the data dir, unless GRADIO_TEMP_DIR is set


class Downloads:
    """One folder of content-named subfolders, each deleted once unused for `keep_seconds`."""

    def __init__(
        self,
        root: Path,
        keep_seconds: float = KEEP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.keep_seconds = keep_seconds
        self.clock = clock  # wall-clock seconds, compared with file modification times
        self._swept_at = -float("inf")

    def write(self, key: str, files: Mapping[str, bytes | Path]) -> list[Path]:
        """Files named by `files`' keys (cleaned by `safe_name`) in the folder for `key`; their paths.

        Each value is the content, or a file to copy it from. `key` names the content (a hash):
        asked for again, the folder is reused and only touched, nothing is written.
        """
        self.sweep_now_and_then()
        folder = self.root / _folder_name(key)
        sizes = [
            content.stat().st_size if isinstance(content, Path) else len(content)
            for content in files.values()
        ]
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for (name, content), size in zip(files.items(), sizes, strict=True):
            path = folder / safe_name(name)
            if not (path.is_file() and path.stat().st_size == size):
                temporary = folder / f".{secrets.token_hex(8)}.tmp"  # one per writer
                if isinstance(content, Path):
                    shutil.copyfile(content, temporary)
                else:
                    temporary.write_bytes(content)
                temporary.replace(path)  # atomic: Gradio never copies half a file
            self._touch(path)
            paths.append(path)
        self._touch(folder)
        return paths

    def sweep_now_and_then(self) -> int:
        """`sweep`, unless one ran in the last minute; how many folders it deleted."""
        if self.clock() - self._swept_at < SWEEP_EVERY_SECONDS:
            return 0
        return self.sweep()

    def sweep(self) -> int:
        """Delete every folder left unused for `keep_seconds`; return how many were deleted."""
        self._swept_at = self.clock()
        cutoff = self._swept_at - self.keep_seconds
        removed = 0
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.lstat().st_mtime >= cutoff:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
            except OSError:
                log.warning("could not delete the old download %s", entry, exc_info=True)
        return removed

    def size(self) -> int:
        """Bytes the folder holds now."""
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())

    def _touch(self, path: Path) -> None:
        now = self.clock()
        os.utime(path, (now, now))


def content_key(*parts: bytes | str) -> str:
    """A hex key naming this content (its parts, in order)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))  # ("ab", "c") and ("a", "bc") differ
        digest.update(data)
    return digest.hexdigest()


def safe_name(name: str) -> str:
    """A file name that stays in its folder: no path parts, no NUL or control characters, not `..`."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")  # controls, NUL, format marks
    name = name.strip(". ")  # `..`, hidden files, and names Windows cannot hold
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        stem, dot, suffix = name.rpartition(".")
        suffix = f".{suffix}" if dot and len(suffix) <= 10 else ""
        room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        name = (stem if suffix else name).encode("utf-8")[:room].decode("utf-8", "ignore") + suffix
    return name or FALLBACK_NAME


def _folder_name(key: str) -> str:
    if len(key) < 16 or not all(c in "0123456789abcdef" for c in key):
        raise ValueError(f"not a hex content key: {key!r}")
    return key[:40]


def use_gradio_cache_under(data_dir: Path, environ: MutableMapping[str, str] = os.environ) -> Path:
    """Point Gradio's cache (uploads, its copies of what the page serves) at `data_dir/gradio`.

    Call it before the page is built: Gradio reads GRADIO_TEMP_DIR when each component is made
    and when the server starts, so it must hold one value for the whole process. An operator's own
    GRADIO_TEMP_DIR wins. Files a previous run left in our folder (a crash skips Gradio's cleanup
    at shutdown) are deleted once they are an hour old.
    """
    ours = (data_dir / GRADIO_CACHE_FOLDER).resolve()
    chosen = environ.setdefault("GRADIO_TEMP_DIR", str(ours))
    if Path(chosen).resolve() == ours:
        Downloads(ours).sweep()
    return Path(chosen)
