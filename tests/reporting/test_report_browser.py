"""The sealed report.html in a real headless Chromium, driven over the DevTools protocol.

Checks that it renders, that the numbers a reader sees equal audit.json, that the console
stays clean, that a hostile description is shown as text with no script run and no dialog
opened, and saves a screenshot to test-output/report.png.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_samples import HOSTILE, fleet_rows, make_run

from include.reporting.evidence_pack import build_evidence_pack

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
    "--window-size=1280,1000",
]

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing: chromium must be installed (`make test` installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class DevTools:
    """Minimal synchronous CDP client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=10)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, **params):
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout}s")
            self.events.append(json.loads(self.ws.recv(timeout=remaining)))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def drain(self, seconds: float) -> None:
        """Collect events that arrive late (console messages after load)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=remaining)))
            except TimeoutError:
                return


@pytest.fixture
def browser():
    _require_chromium()
    profile = tempfile.mkdtemp(prefix="patchflow-chromium-")
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit code {process.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            pages = [t for t in json.load(response) if t["type"] == "page"]
        client = DevTools(pages[0]["webSocketDebuggerUrl"])
        try:
            yield client
        finally:
            client.ws.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def save_screenshot(browser: DevTools, name: str, height: int) -> bytes:
    """The whole page (at most 4000 px tall) as PNG, saved to test-output/<name>."""
    OUTPUT.mkdir(exist_ok=True)
    shot = browser.call(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": min(height, 4000), "scale": 1},
    )
    png = base64.b64decode(shot["data"])
    (OUTPUT / name).write_bytes(png)
    return png


READ_DOM = """(() => {
  const num = sel => Object.fromEntries([...document.querySelectorAll(sel)].map(
      el => [el.dataset.metric || el.dataset.stateCount, Number(el.textContent)]));
  const row = document.querySelector('tr[data-server-id="va1demoweb01"] td.desc');
  return {
    title: document.title,
    metrics: num('[data-metric]'),
    states: num('[data-state-count]'),
    servers: document.querySelectorAll('tr[data-server-id]').length,
    validation: document.querySelector('[data-validation]').dataset.validation,
    description: row.textContent,
    scripts: document.scripts.length,
    pwned: window.__pwned === true,
    charts: [...document.querySelectorAll('svg[role=img] > title')].map(t => t.textContent),
    chartBoxes: [...document.querySelectorAll('svg.chart')].map(s => s.getBoundingClientRect().width),
    height: document.documentElement.scrollHeight,
  };
})()"""


def test_report_renders_in_chromium(browser, tmp_path):
    rows = fleet_rows()
    rows[1]["description"] = '<img src=x onerror="window.__pwned=true;alert(2)">'
    pack = build_evidence_pack(
        tmp_path, rows, make_run(), inventory_count=len(rows), now=datetime(2026, 11, 27, 15, tzinfo=UTC)
    )
    audit = json.loads((pack.path / "audit.json").read_text())
    for domain in ("Page", "Runtime", "Log"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=(pack.path / "report.html").as_uri())
    browser.wait_for("Page.loadEventFired")
    browser.drain(0.5)
    dom = browser.evaluate(READ_DOM)

    summary = audit["summary"]
    assert dom["title"] == f"Patch audit - {audit['run']['run_id']}"
    assert dom["metrics"]["total"] == summary["total"] == len(audit["servers"])
    assert dom["metrics"]["attempted"] == summary["attempted"]
    for key in ("patches_installed", "patches_failed", "reboots"):
        assert dom["metrics"][key] == summary[key]
    for state in ("patched", "patched_no_updates", "failed", "timed_out", "not_attempted"):
        assert dom["metrics"][state] == summary["by_state"][state]
    assert dom["states"] == summary["by_state"]
    assert dom["servers"] == summary["total"]
    assert dom["validation"] == "passed"
    assert dom["charts"] == ["Servers per OS family, by state", "Servers per data center, by state"]
    assert all(width > 300 for width in dom["chartBoxes"])

    assert dom["description"] == HOSTILE  # shown as text, exactly as the API sent it
    assert dom["scripts"] == 0 and dom["pwned"] is False
    methods = [event.get("method") for event in browser.events]
    assert "Page.javascriptDialogOpening" not in methods
    assert "Runtime.exceptionThrown" not in methods
    console_errors = [
        e["params"]
        for e in browser.events
        if (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in {"error", "assert"})
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert console_errors == []

    png = save_screenshot(browser, "report.png", dom["height"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


MEASURE_WIDTH = """(() => {
  const wide = [...document.querySelectorAll('table')].filter(
      t => t.getBoundingClientRect().right > window.innerWidth + 1 && !t.closest('.scroll'));
  return {
    page: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    unboxed: wide.length,
    boxes: [...document.querySelectorAll('.scroll')].filter(b => b.scrollWidth > b.clientWidth).length,
    legend: [...document.querySelectorAll('[data-legend-code]')].length,
    attention: document.querySelector('h2 + .scroll table[data-problems]').getBoundingClientRect().top,
  };
})()"""


def test_tables_never_push_the_page_wider_than_a_narrow_window(browser, tmp_path):
    """Inside Airflow's report tab, or on a laptop, a wide table scrolls in its own box."""
    rows = fleet_rows()
    long_name = "openssl-libs-1.0.2k-26.el7_9.x86_64-with-a-very-long-release-suffix-" * 2
    rows[0]["patches"][0]["name"] = long_name
    pack = build_evidence_pack(
        tmp_path, rows, make_run(), inventory_count=len(rows), now=datetime(2026, 11, 27, 15, tzinfo=UTC)
    )
    browser.call("Page.enable")
    browser.call(
        "Emulation.setDeviceMetricsOverride", width=760, height=1000, deviceScaleFactor=1, mobile=False
    )
    browser.call("Page.navigate", url=(pack.path / "report.html").as_uri())
    browser.wait_for("Page.loadEventFired")
    seen = browser.evaluate(MEASURE_WIDTH)
    assert seen["page"] <= seen["viewport"], seen
    assert seen["unboxed"] == 0 and seen["legend"] == 6
    OUTPUT.mkdir(exist_ok=True)
    shot = browser.call(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": max(seen["attention"] - 80, 0), "width": 760, "height": 1000, "scale": 1},
    )
    (OUTPUT / "report-narrow.png").write_bytes(base64.b64decode(shot["data"]))
