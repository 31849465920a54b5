"""`python -m cluster --replicas 2 [--port 8080]`: replicas behind nginx until Ctrl-C (README)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from cluster.launcher import Cluster, ClusterError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see --help)."""
    parser = argparse.ArgumentParser(
        prog="python -m cluster",
        description="Run N replicas of app.py behind nginx on a throwaway PostgreSQL, on 127.0.0.1.",
    )
    parser.add_argument("--replicas", type=int, default=2, help="how many app.py processes (default 2)")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080)")
    parser.add_argument("--data-dir", type=Path, help="the shared CHAT_DATA_DIR (default: a temporary one)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="for every replica (repeatable)"
    )
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same orderly stop as Ctrl-C


def main(argv: list[str] | None = None) -> None:
    """Start the cluster, print its URL, and stop it on Ctrl-C or SIGTERM."""
    args = parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    cluster = Cluster(replicas=args.replicas, port=args.port, env=env, data_dir=args.data_dir)
    try:
        print(f"starting PostgreSQL, {args.replicas} replicas and nginx (logs in {cluster.directory})")
        with cluster:
            print(f"  database: {cluster.database_url}")
            for replica in cluster.replicas:
                print(f"  {replica.name}: {replica.url} (pid {replica.process.pid}, log {replica.log_path})")
            print(f"serving on {cluster.url} (Ctrl-C to stop)", flush=True)
            while all(replica.process.poll() is None for replica in cluster.replicas):
                time.sleep(0.5)
            dead = [r.name for r in cluster.replicas if r.process.poll() is not None]
            print(f"{', '.join(dead)} exited; stopping the cluster", file=sys.stderr)
            raise SystemExit(1)
    except ClusterError as error:
        raise SystemExit(f"The cluster did not start: {error}") from None
    except KeyboardInterrupt:
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
