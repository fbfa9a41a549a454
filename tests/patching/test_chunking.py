"""A wave's requests in smaller concurrent chunks: same ledger rules, each chunk's answer its own."""

from __future__ import annotations

import dataclasses
import json

import pytest

from include.clc.errors import ClcApiError, PossiblySubmittedError
from include.clc.shapes import BatchItem
from include.patching.chunking import chunks, each
from include.patching.packages import LINUX_YUM
from include.patching.rollout import SubmissionResult
from include.patching.rollout_state import MaintenanceOwnership, Phase, ledger_path
from include.patching.states import ServerState
from tests.patching.memory_api import EXECUTE_PACKAGE, START, MemoryApi, make_rollout

SERVERS = [f"va1web{i:02d}" for i in range(5)]


def test_chunks_keep_the_order_and_the_size():
    assert chunks(SERVERS, 2) == [SERVERS[:2], SERVERS[2:4], SERVERS[4:]]
    assert chunks(SERVERS, None) == [SERVERS] == chunks(SERVERS, 0) == chunks(SERVERS, 9)
    assert chunks([], 2) == []


def test_each_keeps_a_clc_error_in_its_place_and_raises_anything_else():
    def call(n: int) -> int:
        if n == 2:
            raise ClcApiError("POST", "/x", 500, "boom")
        return n * 10

    out = each(call, [1, 2, 3])
    assert out[0] == 10 and isinstance(out[1], ClcApiError) and out[2] == 30
    with pytest.raises(ZeroDivisionError):
        each(lambda n: 1 // n, [1, 0, 2])


def chunked(tmp_path, api: MemoryApi, size: int):
    rollout = make_rollout(tmp_path, api, max_concurrency=5)
    rollout.config = dataclasses.replace(rollout.config, chunk_size=size)
    return rollout


def on_disk(tmp_path) -> dict[str, dict]:
    return json.loads(ledger_path(tmp_path, LINUX_YUM.key).read_text())["servers"]


def test_every_chunk_is_durable_before_the_first_request(tmp_path):
    api = MemoryApi(SERVERS)
    rollout = chunked(tmp_path, api, 2)
    seen: list[dict[str, str]] = []
    start, execute = api.start_maintenance, api.execute_package

    def starting(alias: str, ids: list[str]) -> list[BatchItem]:
        seen.append({sid: e["maintenance"] for sid, e in on_disk(tmp_path).items()})
        return start(alias, ids)

    def executing(alias: str, ids: list[str], package_id: str, parameters: dict) -> list[BatchItem]:
        seen.append({sid: e["phase"] for sid, e in on_disk(tmp_path).items()})
        return execute(alias, ids, package_id, parameters)

    api.start_maintenance, api.execute_package = starting, executing  # type: ignore[method-assign]
    assert sorted(rollout.fill()) == SERVERS
    assert sorted(ids for op, ids in api.calls if op == START) == [
        tuple(SERVERS[:2]),
        tuple(SERVERS[2:4]),
        (SERVERS[4],),
    ]
    assert sorted(ids for op, ids in api.calls if op == EXECUTE_PACKAGE) == [
        tuple(SERVERS[:2]),
        tuple(SERVERS[2:4]),
        (SERVERS[4],),
    ]
    maintenance, phases = seen[:3], seen[3:]
    assert all(set(m.values()) == {MaintenanceOwnership.REQUESTED} for m in maintenance)  # I2
    assert all(set(p.values()) == {Phase.SUBMITTING} for p in phases)  # I1, for every chunk
    assert len({e.job_id for e in rollout.entries.values()}) == 3  # one job per chunk


def test_a_lost_answer_concerns_its_own_chunk_only(tmp_path):
    api = MemoryApi(SERVERS)
    rollout = chunked(tmp_path, api, 2)
    execute = api.execute_package

    def losing_the_middle(alias: str, ids: list[str], package_id: str, parameters: dict) -> list[BatchItem]:
        items = execute(alias, ids, package_id, parameters)
        if SERVERS[2] in ids:
            raise PossiblySubmittedError("POST", "/executePackage", "ConnectionError")
        return items

    api.execute_package = losing_the_middle  # type: ignore[method-assign]
    rollout.fill()
    results = {sid: e.submissions[-1]["result"] for sid, e in rollout.entries.items()}
    assert results == {
        SERVERS[0]: SubmissionResult.SUBMITTED,
        SERVERS[1]: SubmissionResult.SUBMITTED,
        SERVERS[2]: SubmissionResult.POSSIBLY_SUBMITTED,
        SERVERS[3]: SubmissionResult.POSSIBLY_SUBMITTED,
        SERVERS[4]: SubmissionResult.SUBMITTED,
    }
    assert all(e.phase in (Phase.SUBMITTED, Phase.SUBMITTING) for e in rollout.entries.values())
    assert [sid for sid in SERVERS if api.executes(sid) != 1] == []  # each sent exactly once


def test_a_refused_maintenance_chunk_leaves_the_others_going(tmp_path):
    api = MemoryApi(SERVERS, start_request_error={SERVERS[0]})
    rollout = chunked(tmp_path, api, 2)
    started = rollout.fill()
    assert sorted(started) == SERVERS[2:]
    for sid in SERVERS[:2]:
        e = rollout.entries[sid]
        assert e.state is ServerState.NOT_ATTEMPTED and "maintenance mode could not be turned on" in e.reason
        assert e.maintenance is MaintenanceOwnership.REQUESTED  # may have been processed: the release checks
