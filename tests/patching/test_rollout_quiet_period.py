"""The quiet period the rollout learns from its own completed servers."""

from __future__ import annotations

from include.patching.packages import LINUX_YUM
from include.patching.rollout import Rollout, RolloutConfig
from include.patching.rollout_state import Ledger


def rollout(tmp_path, walls: list[float | None]) -> Rollout:
    targets = [(f"va1demo{i:05d}", False) for i in range(len(walls))]
    ledger = Ledger.open(
        tmp_path / "ledger.json", package_key="linux_yum", package_id=LINUX_YUM.package_id, alias="DEMO",
        targets=targets,
    )  # fmt: skip
    for (sid, _), wall in zip(targets, walls, strict=True):
        if wall is not None:
            ledger.servers[sid].wall_seconds = wall
    config = RolloutConfig(
        package=LINUX_YUM, alias="DEMO", max_concurrency=5, max_errors=0, server_timeout=60
    )
    return Rollout(api=None, ledger=ledger, config=config)


def test_no_quiet_period_before_five_servers_completed(tmp_path):
    assert rollout(tmp_path, [30.0, 31.0, 32.0, 33.0, None]).quiet_period() == 0.0


def test_quiet_period_is_just_below_the_quick_end_of_observed_durations(tmp_path):
    walls = [60.0 + i for i in range(20)] + [5.0]  # one outlier finished very fast
    quiet = rollout(tmp_path, walls).quiet_period()
    assert 50.0 <= quiet < 60.0
    assert quiet < min(w for w in walls if w > 5.0)  # never later than what most servers needed
