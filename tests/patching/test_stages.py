"""Stage planning (``include.patching.stages``): sizes, a spread canary, clusters never whole in a stage."""

from __future__ import annotations

import pytest

from include.patching.stages import (
    Candidate,
    StagePlan,
    describe,
    ledger_fields,
    plan_stages,
    stage_sizes,
    wave_problems,
)


def test_sizes_are_counts_or_percentages_per_stage_and_the_rest_forms_one_more_stage():
    assert stage_sizes(["1", "5", "20%", "100%"], 40) == [1, 5, 8, 26]
    assert stage_sizes(["1", "5"], 40) == [1, 5, 34]
    assert stage_sizes(["1", "5", "100%"], 3) == [1, 2]  # empty stages are dropped
    assert stage_sizes(["50%"], 3) == [2, 1]  # rounded up


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["0"], "at least 1"),
        (["101%"], "1% to 100%"),
        (["x"], "not a stage size"),
        (["\u0665"], "not a stage size"),
        ({"a": 1}, "expected a list"),
        ([str(i) for i in range(1, 13)], "at most 10"),
    ],
)
def test_bad_waves_are_named(value, problem):
    assert any(problem in p for p in wave_problems(value)), wave_problems(value)


def test_good_waves_pass():
    assert wave_problems(["1", "5", "20%", "100%"]) == []
    assert wave_problems(None) == [] and wave_problems([]) == []


def fleet() -> list[Candidate]:
    out = [Candidate(f"va1lin{i:02d}", "VA1", "centOS6_64Bit") for i in range(1, 9)]
    out += [Candidate(f"uc1lin{i:02d}", "UC1", "centOS6_64Bit") for i in range(1, 4)]
    out += [Candidate(f"va1rh7{i:02d}", "VA1", "redHat7_64Bit") for i in range(1, 3)]
    return out


def test_the_early_stages_spread_over_data_centers_and_os_versions_deterministically():
    plan = plan_stages(fleet(), ["1", "3", "100%"])
    first, second, third = plan.stages
    assert first.servers == ["va1lin01"]  # the commonest kind goes first
    kinds = {(c.data_center, c.os) for c in fleet() if c.server_id in first.servers + second.servers}
    assert kinds == {("VA1", "centOS6_64Bit"), ("UC1", "centOS6_64Bit"), ("VA1", "redHat7_64Bit")}
    assert len(third.servers) == 13 - 4
    assert plan_stages(list(reversed(fleet())), ["1", "3", "100%"]).as_json() == plan.as_json()
    assert sorted(plan.stage_of()) == sorted(c.server_id for c in fleet())


def test_a_cluster_is_never_whole_in_one_stage_nor_in_the_canary():
    servers = [Candidate(f"va1web{i:02d}", "VA1", "centOS6_64Bit", "web") for i in range(1, 3)]
    servers += [Candidate(f"va1app{i:02d}", "VA1", "redHat7_64Bit") for i in range(1, 4)]
    plan = plan_stages(servers, ["2", "100%"])
    for stage in plan.stages:
        webs = [s for s in stage.servers if s.startswith("va1web")]
        assert len(webs) < 2, plan.as_json()


def test_a_cluster_left_whole_for_the_last_stage_is_split_by_a_stage_of_its_own_after_the_canary():
    servers = [Candidate(f"va1a{i:02d}", "VA1", "centOS6_64Bit") for i in range(1, 5)]
    servers += [Candidate(f"uc1db{i:02d}", "UC1", "redHat6_64Bit", "db") for i in range(1, 4)]
    plan = plan_stages(servers, ["1", "100%"])
    assert [s.spec for s in plan.stages] == ["1", "cluster split", "100%"]
    assert plan.stages[0].servers == ["va1a01"]  # the canary stays as asked
    assert plan.stages[1].servers == ["uc1db01"] and "uc1db01 (db)" in plan.stages[1].note
    assert sorted(plan.stages[2].servers) == ["uc1db02", "uc1db03", "va1a02", "va1a03", "va1a04"]


def test_with_more_stages_the_stage_before_the_last_takes_the_cluster_member():
    servers = [Candidate(f"va1a{i:02d}", "VA1", "centOS6_64Bit") for i in range(1, 5)]
    servers += [Candidate(f"uc1db{i:02d}", "UC1", "redHat6_64Bit", "db") for i in range(1, 3)]
    plan = plan_stages(servers, ["1", "1", "100%"])
    stage_of = plan.stage_of()
    assert stage_of["uc1db01"] != stage_of["uc1db02"]
    assert len({stage_of[s] for s in stage_of}) == 3


def test_the_plan_round_trips_and_describes_itself():
    plan = plan_stages(fleet(), ["1", "20%"])
    assert StagePlan.from_json(plan.as_json()).as_json() == plan.as_json()
    lines = describe(plan, 13)
    assert lines[0].startswith("stage 1 (1): 1 of 13 server(s): va1lin01")


def test_ledger_fields_record_stage_and_cluster_per_server_and_the_plan_in_the_header():
    rows = [
        {"id": "a1", "data_center": "VA1", "os": "x", "custom_fields": {"cluster": "c"}},
        {"id": "a2", "data_center": "VA1", "os": "x", "custom_fields": {"Cluster": "c"}},
        {"id": "a3", "data_center": "UC1", "os": "y", "group_id": "g1"},
    ]
    header, fields, plan = ledger_fields(rows, ["a1", "a2", "a3"], ["1", "100%"], None)
    assert plan is not None and header["stages"] == plan.as_json()
    assert fields["a1"]["cluster"] == fields["a2"]["cluster"] == "cluster:c"
    assert "cluster" not in fields["a3"] and fields["a1"]["stage"] != fields["a2"]["stage"]
    header, fields, plan = ledger_fields(rows, ["a1", "a2", "a3"], [], "group")
    assert header == {} and plan is None and fields == {"a3": {"cluster": "group:g1"}}
