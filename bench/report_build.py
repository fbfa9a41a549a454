"""Time to build, validate and seal the evidence pack (incl. HTML) of a 10,000-server run.

Usage: ``python bench/report_build.py [servers]``. Prints one line per phase and the total.
GX import time is reported separately: it is paid once per worker process.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.patching.states import ServerState
from include.reporting.audit_document import build_audit_document
from include.reporting.evidence_pack import write_evidence_pack
from include.reporting.validation import validate_audit
from include.reporting.verify import verify_chain

STATES = (
    [ServerState.PATCHED] * 6
    + [ServerState.PATCHED_NO_UPDATES] * 2
    + [
        ServerState.FAILED,
        ServerState.SKIPPED_UNSUPPORTED_OS,
    ]
)


def synthetic_rows(count: int) -> list[dict]:
    rows = []
    for index in range(count):
        state = STATES[index % len(STATES)]
        attempted = state != ServerState.SKIPPED_UNSUPPORTED_OS
        patches = [
            {
                "name": f"pkg{n}-1.{index % 7}",
                "kb": None,
                "result_code": "0",
                "status": "failed" if state == ServerState.FAILED and n == 0 else "completed",
                "start_time": "2026-11-27T14:01:00Z",
                "end_time": "2026-11-27T14:02:00Z",
                "attempts": 1,
            }
            for n in range(5 if state == ServerState.PATCHED else 1 if state == ServerState.FAILED else 0)
        ]
        rows.append(
            {
                "server_id": f"va1bench{index:05d}",
                "server_name": f"VA1BENCH{index:05d}",
                "description": f"bench server {index} <b>&</b>",
                "account_alias": "BNCH",
                "data_center": "VA1",
                "group_id": f"g{index % 20}",
                "group_name": f"Group {index % 20}",
                "os": "centOS6_64Bit",
                "os_type": "CentOS 6 64-bit",
                "os_family": "linux",
                "package_id": "c3c6642e-24e1-4c37-b56a-1cf1476ee360" if attempted else None,
                "state": state.value,
                "reason": "" if state != ServerState.FAILED else "a patch failed",
                "execution_id": f"VA1-{index:06d}" if attempted else None,
                "queue_job_id": f"va1-{index}" if attempted else None,
                "patches_installed": sum(p["status"] == "completed" for p in patches),
                "patches_failed": sum(p["status"] == "failed" for p in patches),
                "reboots": None,  # not reported by the patching service
                "attempts": 2 if attempted else None,
                "maintenance": "released" if attempted else "not_used",
                "maintenance_note": "",
                "started_at": "2026-11-27T14:00:00Z" if attempted else None,
                "ended_at": "2026-11-27T14:30:00Z" if attempted else None,
                "observed_at": "2026-11-27T14:30:02Z" if attempted else None,
                "patches": patches,
            }
        )
    return rows


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    run = {
        "dag_id": "patch_fleet",
        "run_id": "bench__1",
        "run_type": "manual",
        "triggered_by": "bench",
        "params": {},
        "started_at": "2026-11-27T14:00:00Z",
        "ended_at": "2026-11-27T15:00:00Z",
        "account_alias": "BNCH",
        "dry_run": False,
        "software": {},
    }
    rows = synthetic_rows(count)
    timings = {}
    start = time.perf_counter()
    import great_expectations  # noqa: F401

    timings["GX import (once per process)"] = time.perf_counter() - start
    start = time.perf_counter()
    document = build_audit_document(rows, run)
    timings["build audit document"] = time.perf_counter() - start
    start = time.perf_counter()
    validation = validate_audit(document, inventory_count=count)
    timings["GX validation"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        pack = write_evidence_pack(Path(folder), document, validation)
        timings["seal pack (json, csv, html, hashes)"] = time.perf_counter() - start
        start = time.perf_counter()
        assert verify_chain(Path(folder)).ok
        timings["verify chain"] = time.perf_counter() - start
        size = (pack.path / "report.html").stat().st_size
    for phase, seconds in timings.items():
        print(f"{phase:40s} {seconds:7.2f} s")
    total = sum(v for k, v in timings.items() if not k.startswith("GX import"))
    print(
        f"{'total for ' + str(count) + ' servers (excl. import)':40s} {total:7.2f} s  "
        f"(validation {'passed' if validation['success'] else 'FAILED'}, report.html {size / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
