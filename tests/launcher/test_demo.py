"""`make demo`: how a scenario is judged, what the terminal says, and that both run at once, apart."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from launcher import demo, demo_executor
from launcher.demo import FULL, SCENARIOS, STAGED, Outcome
from launcher.processes import ComponentExited, Components

HALT = {"stage": 2, "reason": "stage 2 (3) failed its gate: unhealthy uc1demoapp03", "kind": "gate"}
STAGES = {
    "linux_yum": {
        "stages": [
            {"index": 1, "spec": "1", "servers": ["a"], "counts": {"patched": 1}, "gate": "passed"},
            {
                "index": 2,
                "spec": "3",
                "servers": ["b", "c", "uc1demoapp03"],
                "counts": {"patched": 2, "unhealthy": 1},
                "unhealthy": ["uc1demoapp03"],
                "gate": "failed",
            },
            {
                "index": 3,
                "spec": "100%",
                "servers": ["d"],
                "counts": {"not_attempted": 1},
                "gate": "not reached",
            },
        ],
        "halt": HALT,
    }
}


def write_pack(reports: Path, stages: dict | None = None, name: str = "run1") -> Path:
    pack = reports / "runs" / name
    pack.mkdir(parents=True)
    audit = {
        "run": {"run_id": f"manual__{name}", "stages": stages or {}},
        "summary": {"total": 3, "by_state": {"patched": 2, "unhealthy": 1, "failed": 0}},
        "servers": [
            {"server_id": "a", "state": "patched", "reason": ""},
            {"server_id": "uc1demoapp03", "state": "unhealthy", "reason": "health probe: HTTP 503"},
        ],
    }
    (pack / "audit.json").write_text(json.dumps(audit))
    (pack / "manifest.json").write_text("{}")
    return pack


def write_compliance(reports: Path) -> None:
    folder = reports / "compliance"
    folder.mkdir(parents=True)
    stored = {
        "as_of": "2026-12-01T00:00:00Z",
        "summary": {
            "compliance_pct": 50.0,
            "compliant": 1,
            "non_compliant": 1,
            "not_patchable": 0,
            "runs_included": 1,
        },
        "servers": [
            {"server_id": "a", "status": "compliant", "explanation": "", "last_state": "patched"},
            {
                "server_id": "d",
                "status": "non_compliant",
                "explanation": "never successfully patched",
                "last_state": "not_attempted",
            },
        ],
        "validation": {"success": True},
    }
    (folder / "compliance.json").write_text(json.dumps(stored))
    (folder / "compliance.html").write_text("<html></html>")


def outcome(tmp_path: Path, scenario=FULL, *, dag_code=0, compliance_code=0, stages=None) -> Outcome:
    state = tmp_path / scenario.key
    pack = write_pack(state / "reports", stages)
    return Outcome(scenario, state, dag_code=dag_code, pack=pack, compliance_code=compliance_code)


def test_the_scenarios_share_no_state_folder() -> None:
    folders = {s.state() for s in SCENARIOS}
    assert len(folders) == len(SCENARIOS)
    assert all(f.parent == demo.DEMO_DIR for f in folders)
    assert json.loads(STAGED.conf)["waves"] and "waves" not in json.loads(FULL.conf)


def test_full_scenario_is_as_intended_only_when_both_dags_succeed(tmp_path: Path) -> None:
    assert outcome(tmp_path).verdict()[0]
    assert not outcome(tmp_path / "x", dag_code=1).verdict()[0]
    bad = outcome(tmp_path / "y", compliance_code=1)
    assert bad.verdict() == (False, f"compliance_report failed (exit 1); see {bad.log}")


def test_staged_scenario_must_fail_at_a_gate(tmp_path: Path) -> None:
    halted = outcome(tmp_path / "a", STAGED, dag_code=1, stages=STAGES)
    assert halted.verdict()[0] and "health gate" in halted.verdict()[1]
    # failed for another reason: no halt recorded in the sealed audit
    assert not outcome(tmp_path / "b", STAGED, dag_code=1, stages={}).verdict()[0]
    # an approval decision to stop is not a health gate
    decision = {"linux_yum": {**STAGES["linux_yum"], "halt": {**HALT, "kind": "decision"}}}
    assert not outcome(tmp_path / "c", STAGED, dag_code=1, stages=decision).verdict()[0]
    # it succeeded: the unhealthy server did not halt it, which is not what the scenario shows
    ok, line = outcome(tmp_path / "d", STAGED, dag_code=0, stages=STAGES).verdict()
    assert not ok and "should have halted" in line


def test_no_pack_or_an_error_is_never_as_intended(tmp_path: Path) -> None:
    assert not Outcome(FULL, tmp_path, dag_code=0, compliance_code=0).verdict()[0]
    err = outcome(tmp_path, dag_code=0)
    err.error = "airflow db migrate failed"
    assert err.verdict() == (False, "airflow db migrate failed")


def test_stage_lines_name_each_stage_gate_and_the_halt_reason() -> None:
    lines = demo.stage_lines(STAGES)
    assert lines[0] == "Stages:"
    assert (
        "stage 2 (3): 3 server(s), gate failed; 2 patched, 1 unhealthy — unhealthy: uc1demoapp03" in lines[2]
    )
    assert "gate not reached" in lines[3]
    assert lines[-1] == f"  ! linux_yum: {HALT['reason']}"
    assert demo.stage_lines({}) == []


def test_report_block_has_summary_compliance_and_paths(tmp_path: Path) -> None:
    done = outcome(tmp_path, STAGED, dag_code=1, stages=STAGES)
    write_compliance(done.reports)
    text = "\n".join(demo.report_block(2, done))
    assert "2. staged" in text and "not what the demo expects" not in text
    assert "! uc1demoapp03: unhealthy — health probe: HTTP 503" in text
    assert "! d: never successfully patched (last state not_attempted)" in text
    assert f"HTML audit report: {done.pack / 'report.html'}" in text
    assert f"Compliance report: {done.reports / 'compliance' / 'compliance.html'}" in text


def test_report_block_flags_a_scenario_that_went_wrong(tmp_path: Path) -> None:
    text = "\n".join(demo.report_block(1, outcome(tmp_path, dag_code=1)))
    assert "not what the demo expects" in text and "Compliance" not in text


def test_index_lists_every_html_file_written(tmp_path: Path) -> None:
    full = outcome(tmp_path, FULL)
    write_compliance(full.reports)
    staged = outcome(tmp_path, STAGED, dag_code=1, stages=STAGES, compliance_code=1)
    lines = demo.index_lines([full, staged])
    assert [line.split()[:2] for line in lines[2:]] == [
        ["full", "audit"],
        ["full", "compliance"],
        ["staged", "audit"],
    ]


def test_fresh_state_keeps_the_migrated_db_and_drops_the_old_fleet(tmp_path: Path) -> None:
    write_pack(tmp_path / "reports")
    (tmp_path / "airflow" / "logs").mkdir(parents=True)
    (tmp_path / "airflow" / "airflow.db").write_text("db")
    (tmp_path / "tokens").mkdir()
    demo.fresh_state(tmp_path)
    assert (tmp_path / "airflow" / "airflow.db").read_text() == "db"
    assert not (tmp_path / "reports").exists() and not (tmp_path / "tokens").exists()
    assert not (tmp_path / "airflow" / "logs").exists()
    assert demo.latest_pack(tmp_path / "reports") is None


def fake_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, barrier: threading.Barrier | None):
    seen: list[tuple[str, Path, bool]] = []

    def run(scenario, state, say, stop, side_by_side):
        seen.append((scenario.key, state, side_by_side))
        if barrier is not None:
            barrier.wait(timeout=10)  # both must be running at once to pass
        halted = scenario.halts_on_purpose
        return outcome(tmp_path, scenario, dag_code=int(halted), stages=STAGES if halted else None)

    monkeypatch.setattr(demo, "run_scenario", run)
    return seen


def test_make_demo_runs_both_scenarios_at_once(monkeypatch, tmp_path, capsys) -> None:
    seen = fake_runs(monkeypatch, tmp_path, threading.Barrier(2))
    assert demo.main(["--state-dir", str(tmp_path / "elsewhere")]) == 0
    assert sorted(key for key, _, _ in seen) == ["full", "staged"]
    assert {state for _, state, _ in seen} == {
        tmp_path / "elsewhere" / "full",
        tmp_path / "elsewhere" / "staged",
    }
    assert all(side_by_side for _, _, side_by_side in seen)
    out = capsys.readouterr().out
    assert out.index("1. full") < out.index("2. staged") < out.index("Reports to open in a browser")
    assert demo.SIDE_BY_SIDE_NOTE in out


def test_make_demo_staged_runs_the_staged_scenario_alone(monkeypatch, tmp_path, capsys) -> None:
    seen = fake_runs(monkeypatch, tmp_path, None)
    assert demo.main(["--staged", "--one-at-a-time"]) == 0
    assert [(key, side_by_side) for key, _, side_by_side in seen] == [("staged", False)]
    assert "full" not in capsys.readouterr().out.split("Reports to open")[1]


def test_make_demo_fails_when_one_scenario_went_wrong(monkeypatch, tmp_path, capsys) -> None:
    def run(scenario, state, say, stop, side_by_side):
        return outcome(tmp_path, scenario, dag_code=0)  # the staged one did not halt

    monkeypatch.setattr(demo, "run_scenario", run)
    assert demo.main([]) == 1
    assert "did not end as the demo expects" in capsys.readouterr().out


def test_each_scenario_gets_its_own_api_and_log_server_ports() -> None:
    first, second = demo_executor.executor_env(1111), demo_executor.executor_env(2222)
    assert first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:1111/execution/"
    for key in ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"):
        assert first[key] != second[key]


def test_a_helper_that_exits_stops_the_dag_test_instead_of_a_hang(tmp_path: Path) -> None:
    parts = Components(tmp_path / "parts")
    parts.start("triggerer", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], dict(os.environ))
    log = tmp_path / "demo.log"
    started = time.monotonic()
    with pytest.raises(ComponentExited, match="triggerer exited with code 3"):
        demo_executor.run_watched(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            dict(os.environ),
            log,
            parts,
            tmp_path,
            lambda: None,
        )
    assert time.monotonic() - started < 30


def test_ctrl_c_stops_the_watched_command(tmp_path: Path) -> None:
    parts = Components(tmp_path / "parts")
    parts.start("api-server", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))

    def stop() -> None:
        raise demo.Stopped

    try:
        with pytest.raises(demo.Stopped):
            demo_executor.run_watched(
                [sys.executable, "-c", "import time; time.sleep(60)"],
                dict(os.environ),
                tmp_path / "log",
                parts,
                tmp_path,
                stop,
            )
    finally:
        assert parts.stop() == []
