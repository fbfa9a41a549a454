"""The peer: patching a fleet the way the published SDK's documentation suggests.

Run by ``bench/makespan.py`` with the Python of the SDK's own virtual environment
(``.sdk-venv/bin/python``; clc-sdk 2.51 is never importable by patchflow), against a fresh
simulator holding the same generated fleet. It is what a customer script on clc-sdk looks like:
a thread pool of ``max_concurrency`` workers, each with its own SDK session
(``clc.v2.get_session``: the SDK's global session is not thread-safe — its threads rewrite one
shared ``content-type`` header — so a working multi-threaded script logs in once per worker),
each server taken through

    server = clc.v2.Server(id=..., alias=..., session=session)
    server.StartMaintenance().WaitUntilComplete(poll_freq)
    server.ExecutePackage(package_id=..., parameters={...}).WaitUntilComplete(poll_freq)
    server.StopMaintenance().WaitUntilComplete(poll_freq)

(``ExecutePackage(...).WaitUntilComplete()`` is the SDK docstring's own example). The SDK polls
the queue job, so the script believes a server done when that job succeeds; whether its
execution had really completed is for the benchmark to judge from the simulator's timeline.

Usage: ``<sdk-python> clc_sdk_script.py <simulator URL> <targets.json> <max_concurrency> <poll_freq>``
where targets.json is ``{"alias": ..., "servers": [[server id, package id], ...]}``. Prints one
JSON line per server (``server``, ``started``, ``done`` wall epoch, ``failed_requests``,
``error``) and a last line ``{"summary": ...}``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import clc

USERNAME, PASSWORD = "demo.admin", "demo-password"  # the generated fleet's simulator-only login
_local = threading.local()


def session() -> dict:
    if not hasattr(_local, "session"):
        _local.session = clc.v2.get_session(USERNAME, PASSWORD)
    return _local.session


def patch_one(alias: str, server_id: str, package_id: str, poll_freq: float) -> dict:
    started = time.time()
    failures, error = 0, None
    try:
        server = clc.v2.Server(id=server_id, alias=alias, session=session())
        failures += server.StartMaintenance().WaitUntilComplete(poll_freq=poll_freq)
        params = {"patch.debug.mode": "false"} if package_id.startswith("c3c6642e") else {}
        failures += server.ExecutePackage(package_id=package_id, parameters=params).WaitUntilComplete(
            poll_freq=poll_freq
        )
        failures += server.StopMaintenance().WaitUntilComplete(poll_freq=poll_freq)
    except Exception as exc:  # a customer script logs and goes on with the next server
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    return {
        "server": server_id,
        "started": started,
        "done": time.time(),
        "failed_requests": failures,
        "error": error,
    }


def main(base: str, targets_file: str, concurrency: int, poll_freq: float) -> int:
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "connection pool is full" at high concurrency
    clc.defaults.ENDPOINT_URL_V2 = base.rstrip("/")
    with open(targets_file) as f:
        targets = json.load(f)
    alias = targets["alias"]
    began = time.time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(patch_one, alias, sid, pkg, poll_freq) for sid, pkg in targets["servers"]]
        results = [f.result() for f in futures]
    finished = time.time()
    for r in results:
        print(json.dumps(r))
    errors = sum(1 for r in results if r["error"])
    print(
        json.dumps(
            {
                "summary": {
                    "began": began,
                    "believed_done": finished,
                    "servers": len(results),
                    "errors": errors,
                }
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
