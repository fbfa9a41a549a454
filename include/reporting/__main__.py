"""CLI: ``python -m include.reporting verify <reports location>``.

Exit status 0 when every hash and link is intact, 1 on any problem (each named on stdout),
2 on bad usage. A location containing ``://`` is opened as an Airflow ``ObjectStoragePath``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from include.reporting.verify import format_verdict, verify_chain


def _location(text: str) -> Any:
    if "://" in text:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(text)
    return Path(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.reporting")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check every evidence pack hash and the manifest chain")
    verify.add_argument("location", help="reports location (a folder, or s3://... with a provider)")
    args = parser.parse_args(argv)
    base = _location(args.location)
    if not base.exists():
        print(f"error: reports location {args.location} does not exist", file=sys.stderr)
        return 2
    verdict = verify_chain(base)
    print(format_verdict(args.location, verdict))
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
