"""Benchmark the CLC simulator as a real process over loopback and print each figure
next to its target (issue #3):

* recursive detailed group read over a generated 10,000-server fleet  <= 1.5 s
* queue-status polls per second (one server process = one core)         >= 1000/s
* resident memory of the server process with 10,000 servers            <= 300 MB

Usage: ``.venv/bin/python bench/simulator_perf.py [--servers 10000] [--seed 7] [--seconds 5] [--clients 4]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
READY = "CLC simulator ready at "


def start_simulator(servers: int, seed: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--generate",
            str(servers),
            "--seed",
            str(seed),
            "--port",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(READY):
            return proc, line[len(READY) :].strip()
    raise RuntimeError("simulator did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def poll_worker(url: str, path: str, token: str, seconds: float, out) -> None:
    """One client process: a keep-alive http.client connection polling as fast as it can."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    done = errors = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 200 and body.startswith(b'{"status":'):
            done += 1
        else:
            errors += 1
    conn.close()
    out.put((done, errors))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--seconds", type=float, default=5.0, help="duration of the polling test")
    p.add_argument("--clients", type=int, default=4, help="concurrent polling client processes")
    args = p.parse_args()

    t0 = time.perf_counter()
    proc, url = start_simulator(args.servers, args.seed)
    startup = time.perf_counter() - t0
    try:
        with httpx.Client(base_url=url, timeout=60) as c:
            login = c.post(
                "/v2/authentication/login", json={"username": "demo.admin", "password": "demo-password"}
            )
            token = login.json()["bearerToken"]
            c.headers["Authorization"] = f"Bearer {token}"
            dcs = c.get("/v2/datacenters/DEMO", params={"groupLinks": "true"}).json()
            roots = [next(link["id"] for link in dc["links"] if link["rel"] == "group") for dc in dcs]

            def read_all() -> tuple[float, int, int]:
                start = time.perf_counter()
                count = size = 0
                for root in roots:
                    r = c.get(f"/v2/groups/DEMO/{root}", params={"serverDetail": "detailed"})
                    r.raise_for_status()
                    count += r.json()["serversCount"]
                    size += len(r.content)
                return time.perf_counter() - start, count, size

            cold, count, size = read_all()
            warm = min(read_all()[0] for _ in range(3))
            job = c.post("/v2/operations/DEMO/servers/startMaintenance", json=["VA1DEMON000001"]).json()
            status_path = job[0]["links"][0]["href"]

        queue: mp.Queue = mp.Queue()
        workers = [
            mp.Process(target=poll_worker, args=(url, status_path, token, args.seconds, queue))
            for _ in range(args.clients)
        ]
        start = time.perf_counter()
        for w in workers:
            w.start()
        results = [queue.get() for _ in workers]
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - start
        polls = sum(r[0] for r in results)
        errors = sum(r[1] for r in results)
        memory = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)

    print(f"simulator start-up with {args.servers:,} generated servers: {startup:.2f} s")
    print(
        f"detailed recursive group read, {count:,} servers in {len(roots)} root groups "
        f"({size / 1e6:.1f} MB JSON), first read: {cold:.3f} s (target <= 1.5 s)"
    )
    print(
        f"detailed recursive group read, {count:,} servers, warm (best of 3): {warm:.3f} s (target <= 1.5 s)"
    )
    print(
        f"queue-status polls: {polls / elapsed:,.0f}/s over {elapsed:.1f} s with {args.clients} keep-alive "
        f"clients, {errors} errors (target >= 1,000/s)"
    )
    print(f"server resident memory with {args.servers:,} servers: {memory:.0f} MB (target <= 300 MB)")
    ok = cold <= 1.5 and polls / elapsed >= 1000 and memory <= 300 and errors == 0
    print(
        json.dumps(
            {
                "cold_read_s": round(cold, 3),
                "warm_read_s": round(warm, 3),
                "polls_per_s": round(polls / elapsed),
                "rss_mb": round(memory),
                "all_targets_met": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
