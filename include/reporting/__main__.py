"""CLI: ``python -m include.reporting verify <reports location> [--expect-head <sha256>]``.

Exit status: 0 when every pack, hash and link is intact (and the newest pack has the expected
head, if given); 1 when anything is broken or malformed (each item named on stdout); 2 when
nothing could be verified (no such location, a file, not a reports folder, no pack, a bad
argument), with a one-line reason on stderr. A location containing ``://`` is opened as an
Airflow ``ObjectStoragePath``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from include.reporting.verify import VerifyStatus, format_result, verify_reports


def _location(text: str) -> Any:
    if "://" in text:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(text)
    return Path(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.reporting")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify",
        help="check every evidence pack, file hash and chain link",
        description="Exit 0: verified; 1: tampering or damage found (each item listed); 2: nothing verified.",
    )
    verify.add_argument("location", help="reports location (a folder, or s3://... with a provider)")
    verify.add_argument(
        "--expect-head",
        metavar="SHA256",
        help="manifest SHA-256 the newest pack must have (manifest_sha256 of the latest patch_audit "
        "asset event): detects the newest pack being removed or re-sealed",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result = verify_reports(_location(args.location), expect_head=args.expect_head)
    if result.status is VerifyStatus.REFUSED:
        print(f"REFUSED: {result.refused}", file=sys.stderr)
        return result.exit_code
    print(format_result(result))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
