"""Disk left by exports: N exports of one conversation with images, through the real app.

    TMPDIR=$T/tmp GRADIO_TEMP_DIR=$T/gradio python -m bench.export_disk --exports 500 --data-dir $T/data

Point TMPDIR and GRADIO_TEMP_DIR at empty folders (the script refuses otherwise) so that what it
counts is this run's alone: it sends one message carrying `--images` photos of noise (about 3.5 MB
each, the most Claude takes) to the loopback Messages API, exports the conversation `--exports`
times through the page's /export endpoint (as the Export button does), and prints the bytes left
in the data dir's downloads, Gradio's cache and the temporary folder after each step.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from gradio_client import Client
from PIL import Image

from tests.conftest import chat, launched_app, make_settings
from tests.loopback_api import LoopbackMessagesAPI
from tests.upstream import TEST_KEY, echo_script

PHOTO_SIDE = 1080  # 1080 x 1080 x 3 bytes of noise: a 3.5 MB PNG, 4.7 MB as base64 (the limit is 5)


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under a folder (0 when it does not exist)."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    """Run the measurement and print one line per checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=500)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    temporary, cache = Path(tempfile.gettempdir()), Path(os.environ.get("GRADIO_TEMP_DIR", ""))
    if not os.environ.get("GRADIO_TEMP_DIR") or any(temporary.iterdir()) or any(cache.glob("*")):
        raise SystemExit("Set TMPDIR and GRADIO_TEMP_DIR to empty folders of this run's own.")
    photos = []
    for number in range(args.images):
        path = args.data_dir.parent / f"photo-{number}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.frombytes("RGB", (PHOTO_SIDE, PHOTO_SIDE), os.urandom(3 * PHOTO_SIDE**2)).save(path)
        photos.append(path)
    images = sum(path.stat().st_size for path in photos)

    def report(step: str) -> None:
        downloads, cached = folder_bytes(args.data_dir / "downloads"), folder_bytes(cache)
        print(
            f"{step:>14}: downloads {downloads / 1e6:8.1f} MB  gradio cache {cached / 1e6:8.1f} MB"
            f"  tmp {folder_bytes(temporary) / 1e6:8.1f} MB",
            flush=True,
        )

    with LoopbackMessagesAPI(echo_script()) as api:
        settings = make_settings(api_key=TEST_KEY, base_url=api.url, data_dir=args.data_dir)
        with launched_app(settings) as url:
            client = Client(url, verbose=False, download_files=False)
            chat(client, "what are these?", photos)
            print(f"one message with {args.images} images ({images / 1e6:.1f} MB), {len(api.requests)} sent")
            report("before export")
            started = time.monotonic()
            for number in range(1, args.exports + 1):
                client.predict(api_name="/export")  # the session's history: the message above
                if number in (1, 2, 10, 20, 50, 100, 200, 500) or number == args.exports:
                    report(f"{number} exports")
            print(f"{args.exports} exports took {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
