"""While servers wait for a slot, completions are reported at once, or paired (``refill_hold``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from include.patching.read_schedule import Cadence
from include.patching.rollout_state import Phase
from patchflow.waiting import refill_hold, refill_window

CADENCE = Cadence(
    final=45.0, final_late=50.0, short_gap=5.0, long_gap=155.0, installs=(), start_lag=1.0, rate=0.1
)


def rollout(queued: int, *, exhausted: bool = False, window_open: bool = True) -> SimpleNamespace:
    ids = [f"s{i}" for i in range(queued)]
    return SimpleNamespace(
        ledger=SimpleNamespace(in_phase=lambda phase: ids if phase is Phase.QUEUED else []),
        budget_exhausted=lambda: exhausted,
        may_start_more=lambda: window_open,
    )


def test_servers_waiting_for_a_slot_get_no_batch_window_and_a_pair_hold():
    waiting = rollout(3)
    assert refill_window(waiting, 30.0) == 0.0
    # half the 45 API-second scan, in our seconds at 0.1 of ours per API second
    assert refill_hold(waiting, CADENCE) == pytest.approx(2.25)


@pytest.mark.parametrize(
    ("case", "window"),
    [(rollout(0), 30.0), (rollout(3, exhausted=True), 30.0), (rollout(3, window_open=False), 30.0)],
    ids=["nothing queued", "error budget spent", "window closing"],
)
def test_with_nothing_to_start_a_completion_is_never_held_for_a_pair(case, window):
    assert refill_hold(case, CADENCE) == 0.0
    assert refill_window(case, 30.0) == window


def test_nothing_learnt_yet_means_no_pair_hold():
    assert refill_hold(rollout(3), None) == 0.0
