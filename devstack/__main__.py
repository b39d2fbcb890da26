"""``python -m devstack start|stop|status|env``: the local services from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack import (
    DEFAULT_STATE_DIR,
    KAFKA_STORAGES,
    SERVICES,
    DevstackError,
    endpoints,
    start,
    status,
    stop,
)
from devstack import _load as load_states


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit code 0 when the requested services are healthy."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=("start", "stop", "status", "env"))
    parser.add_argument("--services", default=",".join(SERVICES), help="comma-separated: kafka,clickhouse,s3")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument(
        "--kafka-storage",
        choices=KAFKA_STORAGES,
        default="memory",
        help="where the broker keeps records: memory, or s3 (a bucket of the s3 service; survives a crash)",
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.services.split(",") if s.strip()]
    try:
        if args.command == "start":
            found, _ = start(names, args.state_dir, kafka_storage=args.kafka_storage)
            for key, value in found.env().items():
                print(f"export {key}={value}")
        elif args.command == "stop":
            stopped = stop(names, args.state_dir)
            print("stopped: " + (", ".join(stopped) or "nothing was running"))
        elif args.command == "env":
            for key, value in endpoints(load_states(args.state_dir)).env().items():
                print(f"export {key}={value}")
        else:
            report = status(names, args.state_dir)
            for name, info in report.items():
                state = "running" if info["running"] else "stopped"
                ports = ",".join(f"{k}={v}" for k, v in info["ports"].items())
                healthy = "yes" if info["healthy"] else "no"
                print(f"{name:<10} {state:<8} pid={info['pid']} {ports} healthy={healthy}")
            return 0 if all(i["healthy"] for i in report.values()) else 1
    except DevstackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
