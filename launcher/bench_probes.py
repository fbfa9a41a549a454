"""What the makespan benchmark watches while a run goes: a process tree's CPU and memory
(read from /proc) and Airflow's own metrics (OpenTelemetry, pushed to a tiny local receiver).

Airflow 3.3's StatsD logger needs the ``statsd`` package, which patchflow does not install; its
OpenTelemetry logger ships with Airflow and pushes OTLP/HTTP protobuf, which the receiver below
decodes with the ``opentelemetry-proto`` classes Airflow already depends on. Switch it on with
:meth:`OtlpMetricsSink.airflow_env`.
"""

from __future__ import annotations

import gzip
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from launcher import proctree

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _cpu_and_rss(pid: int) -> tuple[float, int] | None:
    """(CPU seconds used, resident bytes) of one process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS, int(statm.split()[1]) * _PAGE


def _pss(pid: int) -> int | None:
    """Proportional set size in bytes: each shared page divided among the processes sharing it.
    Airflow forks its workers (the triggerer's runner is a fork of its supervisor), so summing
    their RSS counts the pages they share twice; summing PSS does not."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


@dataclass
class TreeSampler:
    """Samples a process and its descendants every ``interval`` seconds in a thread: peak CPU
    (percent of one core, over each interval), peak total resident memory (summed RSS, which
    counts pages shared by forked processes once per process), peak summed PSS (each page
    once), the peak RSS of its largest single process (what ``ps`` shows for it), and the summed
    figures at the first sample (before the run's load)."""

    pid: int
    interval: float = 2.0
    peak_cpu_percent: float = 0.0
    peak_rss_bytes: int = 0
    peak_pss_bytes: int = 0
    peak_process_rss_bytes: int = 0
    first_rss_bytes: int = 0
    first_pss_bytes: int = 0
    processes: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _tree(self) -> tuple[dict[int, float], int, int]:
        cpu: dict[int, float] = {}
        rss = pss = 0
        for proc in proctree.family(self.pid):
            got = _cpu_and_rss(proc.pid)
            if got is not None:
                cpu[proc.pid] = got[0]
                rss += got[1]
                pss += _pss(proc.pid) or got[1]
                self.peak_process_rss_bytes = max(self.peak_process_rss_bytes, got[1])
        return cpu, rss, pss

    def _run(self) -> None:
        before, self.first_rss_bytes, self.first_pss_bytes = self._tree()
        t0 = time.monotonic()
        while not self._stop.wait(self.interval):
            now, rss, pss = self._tree()
            t1 = time.monotonic()
            # a process new in this interval counts from 0; one that exited is dropped
            used = sum(v - before.get(pid, 0.0) for pid, v in now.items())
            self.peak_cpu_percent = max(self.peak_cpu_percent, 100 * used / max(t1 - t0, 1e-6))
            if rss > self.peak_rss_bytes:
                self.peak_rss_bytes, self.processes = rss, len(now)
            self.peak_pss_bytes = max(self.peak_pss_bytes, pss)
            self.samples += 1
            before, t0 = now, t1

    def start(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, name=f"sampler-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


@dataclass
class HistogramStats:
    count: int = 0
    total: float = 0.0
    max: float = 0.0


class OtlpMetricsSink:
    """An OTLP/HTTP metrics receiver on 127.0.0.1: keeps, per histogram metric name, the latest
    cumulative count, sum and max across every exporting process (by service instance)."""

    def __init__(self) -> None:
        self.histograms: dict[str, dict[str, HistogramStats]] = {}
        self.exports = 0
        self.errors = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    sink.ingest(body, source=f"{self.client_address[1]}")
                except Exception:  # a metric we cannot read never breaks the benchmark
                    sink.errors += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="otlp-sink", daemon=True)

    def airflow_env(self, interval_ms: int = 5000) -> dict[str, str]:
        return {
            "AIRFLOW__METRICS__OTEL_ON": "True",
            "AIRFLOW__METRICS__OTEL_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__OTEL_PORT": str(self.port),
            "AIRFLOW__METRICS__OTEL_INTERVAL_MILLISECONDS": str(interval_ms),
        }

    def ingest(self, body: bytes, source: str) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        self.exports += 1
        for resource in request.resource_metrics:
            instance = next(
                (
                    a.value.string_value
                    for a in resource.resource.attributes
                    if a.key == "service.instance.id"
                ),
                source,
            )
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    if kind not in ("histogram", "exponential_histogram"):
                        continue
                    points = getattr(metric, kind).data_points
                    stats = HistogramStats(
                        count=sum(p.count for p in points),
                        total=sum(p.sum for p in points),
                        max=max((p.max for p in points), default=0.0),
                    )
                    self.histograms.setdefault(metric.name, {})[instance] = stats

    def histogram(self, suffix: str) -> HistogramStats | None:
        """The metric whose name ends with ``suffix``, summed over processes (max of maxima)."""
        for name, by_instance in self.histograms.items():
            if name.endswith(suffix):
                parts = list(by_instance.values())
                return HistogramStats(
                    count=sum(p.count for p in parts),
                    total=sum(p.total for p in parts),
                    max=max(p.max for p in parts),
                )
        return None

    def start(self) -> OtlpMetricsSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
