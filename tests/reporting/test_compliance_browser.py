"""The compliance report in a real headless Chromium (the DevTools fixture of test_report_browser).

Issue 10 as a reader saw it: every server is listed once, the trend labels are drawn whole
(measured with the browser's own text layout, not estimated), a dry run is shown apart, and the
numbers shown equal compliance.json. Saves test-output/compliance.png.
"""

from __future__ import annotations

import json

import pytest
from test_compliance import DRY, at, seal
from test_report_browser import browser, save_screenshot  # noqa: F401 - browser is the fixture

from include.reporting.compliance import update_compliance_report

pytestmark = pytest.mark.browser

READ_DOM = """(() => {
  const ids = [...document.querySelectorAll('tr[data-server-id]')].map(tr => tr.dataset.serverId);
  const labels = [...document.querySelectorAll('svg.chart')].map(svg => {
    const firstBar = svg.querySelector('rect');
    return [...svg.querySelectorAll('text.chart-label')].map(t => {
      const box = t.getBBox();
      const bar = Number(firstBar.getAttribute('x'));
      return {text: t.textContent, left: box.x, right: box.x + box.width, bar};
    });
  });
  return {
    ids,
    pct: document.querySelector('[data-metric="compliance_pct"]').textContent,
    dryRuns: document.querySelectorAll('tr[data-dry-run-id]').length,
    trendRuns: document.querySelectorAll('tr[data-run-id]').length,
    sections: [...document.querySelectorAll('h2[data-section]')].map(h => h.dataset.section),
    labels,
    pageWidth: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
  };
})()"""


def test_compliance_report_in_chromium(browser, tmp_path):  # noqa: F811 - the imported fixture
    seal(tmp_path, "2026-10-13", {"va1a": "patched", "va1b": "failed", "va1old": "skipped_unsupported_os"})
    seal(tmp_path, "2026-10-20", DRY, dry_run=True)
    seal(
        tmp_path,
        "2026-11-10",
        {"va1a": "patched", "va1b": "failed", "va1old": "skipped_unsupported_os", "va1new": "patched"},
    )
    report = update_compliance_report(tmp_path, as_of=at("2026-11-20"))
    stored = json.loads((tmp_path / "compliance" / "compliance.json").read_text())

    browser.call("Page.enable")
    browser.call("Page.navigate", url=(tmp_path / "compliance" / "compliance.html").as_uri())
    browser.wait_for("Page.loadEventFired")
    dom = browser.evaluate(READ_DOM)

    assert sorted(dom["ids"]) == sorted(s["server_id"] for s in stored["servers"])  # each once
    assert dom["sections"] == ["non_compliant", "compliant", "not_patchable"]
    assert float(dom["pct"]) == report.summary["compliance_pct"] == 66.7
    assert (dom["trendRuns"], dom["dryRuns"]) == (2, 1)
    for chart in dom["labels"]:
        assert [label["text"] for label in chart] == ["2026-10-13 02:00", "2026-11-10 02:00"]
        for label in chart:
            assert label["left"] >= 0, label  # not clipped at the chart's left edge
            assert label["right"] <= label["bar"], label  # nor running into the bars

    png = save_screenshot(browser, "compliance.png", dom["height"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
