"""The makespan benchmark's probes: the OTLP metrics receiver and the /proc tree sampler."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from launcher.bench_probes import OtlpMetricsSink, TreeSampler, _cpu_and_rss


def _export(name: str, count: int, total: float, top: float, instance: str) -> bytes:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    attr = resource.resource.attributes.add()
    attr.key, attr.value.string_value = "service.instance.id", instance
    metric = resource.scope_metrics.add().metrics.add()
    metric.name = name
    point = metric.exponential_histogram.data_points.add()
    point.count, point.sum, point.max = count, total, top
    return request.SerializeToString()


def test_sink_keeps_the_latest_cumulative_point_per_process_and_sums_them():
    sink = OtlpMetricsSink().start()
    try:
        url = f"http://127.0.0.1:{sink.port}/v1/metrics"
        for body in (
            _export("airflow.scheduler.scheduler_loop_duration", 10, 500.0, 90.0, "a"),
            _export("airflow.scheduler.scheduler_loop_duration", 20, 1200.0, 150.0, "a"),  # later, cumulative
            _export("airflow.scheduler.scheduler_loop_duration", 5, 100.0, 40.0, "b"),
        ):
            req = urllib.request.Request(url, data=body, method="POST")
            req.add_header("Content-Type", "application/x-protobuf")
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
        loop = sink.histogram("scheduler_loop_duration")
        assert loop is not None and (loop.count, loop.total, loop.max) == (25, 1300.0, 150.0)
        assert sink.histogram("no_such_metric") is None and sink.errors == 0
        assert sink.airflow_env()["AIRFLOW__METRICS__OTEL_PORT"] == str(sink.port)
    finally:
        sink.stop()


def test_tree_sampler_sees_a_busy_child_and_the_tree_memory():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        cpu_before = _cpu_and_rss(busy.pid)[0]  # type: ignore[index]
        began = time.monotonic()
        sampler = TreeSampler(os.getpid(), interval=0.3).start()
        time.sleep(1.5)
        sampler.stop()
        # what the child really got of a core (a loaded machine gives it less than all of one)
        share = 100 * (_cpu_and_rss(busy.pid)[0] - cpu_before) / (time.monotonic() - began)  # type: ignore[index]
    finally:
        busy.kill()
        busy.wait()
    assert sampler.samples >= 2
    assert share > 1  # the child did spin
    # the peak interval saw at least about the child's average share (ticks are 10 ms)
    assert sampler.peak_cpu_percent >= 0.8 * share
    assert sampler.peak_rss_bytes > 10 * 2**20
    # PSS counts a page shared by forked processes once: never more than the RSS sum
    assert 0 < sampler.peak_pss_bytes <= sampler.peak_rss_bytes
    # one process's resident memory: a part of the sum, at least the spinning child's interpreter
    assert 5 * 2**20 < sampler.peak_process_rss_bytes < sampler.peak_rss_bytes
    assert sampler.first_rss_bytes > 0 and sampler.processes >= 2
