"""ExecutePackageOperator against the real simulator in-process: what it sends, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.patching.packages import LINUX_YUM
from tests.plugins.blocks import execute, wait
from tests.plugins.cloud import EXECUTE, WINDOWS, fleet_with

WEB = {"va1demoweb01", "va1demoweb02"}


def ledger(out: dict) -> dict:
    with open(out["ledger_path"]) as fh:
        return json.load(fh)


def test_a_group_is_put_into_maintenance_and_sent_the_package_once(cloud, tmp_path):
    out = execute(tmp_path, group="Web")
    assert {e["server_id"] for e in out["executions"]} == WEB
    assert all(e["job_id"] for e in out["executions"])  # the queue job of the one request
    (post,) = cloud.sent(method="POST", containing="executePackage")
    assert sorted(post.body["servers"]) == sorted(WEB)
    assert post.body["package"] == {
        "packageId": LINUX_YUM.package_id,
        "parameters": {"patch.debug.mode": "false"},
    }
    assert all(cloud.in_maintenance(s) for s in WEB)
    assert cloud.executions_started("va1demodb01") == 0  # another group: untouched


def test_servers_the_package_cannot_patch_are_skipped_with_their_reason(start_cloud, tmp_path):
    cloud = start_cloud(
        fleet_with(va1demoweb02={"os": WINDOWS, "patches": []}, va1demodb01={"power_state": "stopped"})
    )
    out = execute(tmp_path, server_ids=["VA1DEMOWEB01", "va1demoweb02", "va1demodb01"])
    assert [e["server_id"] for e in out["executions"]] == ["va1demoweb01"]
    plan = {r["id"]: r for r in json.loads(Path(out["plan_path"]).read_text())["servers"]}
    assert plan["va1demoweb02"]["state"] == "skipped_unsupported_os"
    assert "patched by windows_2012, not by linux_yum" in plan["va1demoweb02"]["reason"]
    assert plan["va1demodb01"]["state"] == "skipped_not_running"
    (post,) = cloud.sent(method="POST", containing="executePackage")
    assert post.body["servers"] == ["va1demoweb01"]


def test_unknown_servers_and_groups_are_all_named_before_anything_is_touched(cloud, tmp_path):
    with pytest.raises(AirflowFailException) as failed:
        execute(tmp_path, server_ids=["va1demoweb1"], group="Webb")
    message = str(failed.value)
    assert "server_ids: 'va1demoweb1' is not a server of alias DEMO" in message
    assert "did you mean 'va1demoweb01'?" in message and "'Webb'" in message
    assert not cloud.sent(method="POST", containing="/operations/")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"package": "linux_apt", "group": "Web"}, "neither a registry key"),
        ({}, "needs server_ids or a group"),
        ({"group": "Web", "maintenance_mode": "yes"}, "maintenance_mode must be true or false"),
        ({"group": "Web", "server_timeout": 0}, "server_timeout must be seconds between 1 and 86400"),
    ],
)
def test_bad_arguments_fail_without_retries(cloud, tmp_path, kwargs, message):
    with pytest.raises(AirflowFailException, match=message):
        execute(tmp_path, **kwargs)
    assert not cloud.sent(method="POST", containing="/operations/")


def test_parameters_and_a_package_given_by_id_reach_the_request(cloud, tmp_path):
    out = execute(
        tmp_path, package=LINUX_YUM.package_id, group="Web", parameters={"patch.debug.mode": "true"}
    )
    assert out["package_key"] == "linux_yum"
    (post,) = cloud.sent(method="POST", containing="executePackage")
    assert post.body["package"]["parameters"] == {"patch.debug.mode": "true"}


def test_without_maintenance_mode_maintenance_is_never_touched(cloud, tmp_path):
    execute(tmp_path, group="Web", maintenance_mode=False)
    assert not cloud.sent(containing="Maintenance")


def test_a_retry_after_the_worker_died_around_the_post_sends_nothing_again(cloud, tmp_path):
    """The ledger says ``submitting`` (the answer was never recorded): the retry adopts, never re-sends."""
    first = execute(tmp_path, group="Web")
    path = first["ledger_path"]
    data = ledger(first)
    for entry in data["servers"].values():
        entry.update(phase="submitting", job_id=None)
        entry["submissions"][-1].update(result="submitting", job_id=None)
    with open(path, "w") as fh:
        json.dump(data, fh)
    cloud.settle()  # the executions have started meanwhile
    retried = execute(tmp_path, group="Web")
    assert len(cloud.sent(method="POST", containing="executePackage")) == 1  # I1
    adopted = {e["server_id"]: e["execution_id"] for e in retried["executions"]}
    assert adopted == {s: cloud.executions(s)[-1] for s in WEB}
    result, _ = wait(retried)
    assert {s: r["state"] for s, r in result["servers"].items()} == dict.fromkeys(WEB, "patched")
    assert all(cloud.executions_started(s) == 1 for s in WEB)


def test_a_lost_answer_is_adopted_by_the_sensor_and_never_sent_again(cloud, tmp_path):
    cloud.fault(kind="drop", route=EXECUTE, count=1)  # processed, then the connection is cut
    out = execute(tmp_path, group="Web")
    assert all(e["job_id"] is None for e in out["executions"])  # nothing to follow but the summary
    again = execute(tmp_path, group="Web")  # a retry of the task changes nothing
    assert again["executions"] and len(cloud.sent(method="POST", containing="executePackage")) == 1
    result, _ = wait(out)
    assert result["counts"] == {"patched": 2, "total": 2}
    assert all(cloud.executions_started(s) == 1 for s in WEB)
    assert [s["result"] for e in ledger(out)["servers"].values() for s in e["submissions"]] == [
        "possibly_submitted"
    ] * 2


def test_a_lost_request_is_never_sent_again_and_fails_at_the_deadline_saying_so(cloud, tmp_path):
    """The hook cannot tell a lost answer from a lost request: neither is re-sent (I1)."""
    cloud.fault(kind="garbage", route=EXECUTE, status=502, body="html", processed=False, count=1)
    out = execute(tmp_path, group="Web", server_timeout=0.5)
    with pytest.raises(AirflowFailException, match="answer to the Execute Package request was lost"):
        wait(out)
    assert len(cloud.sent(method="POST", containing="executePackage")) == 1
    assert not any(cloud.executions_started(s) for s in WEB)
    cloud.settle()
    assert not any(cloud.in_maintenance(s) for s in WEB)  # released once they ended (I2)


def plan_row(state: str | None, package_key: str | None) -> dict:
    return {"id": "va1acmeapp01", "os": "ubuntu14_64Bit", "state": state, "package_key": package_key}


def test_a_package_known_only_by_its_id_is_sent_whatever_the_os_rules_say():
    from include.patching.packages import package_for
    from patchflow.targets import for_package

    own = package_for("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    assert own.key == "package_0f1e2d3c" and own.parameters() == {}
    unsupported = for_package(plan_row("skipped_unsupported_os", None), own)
    assert unsupported["state"] is None and unsupported["package_key"] == own.key
    stopped = plan_row("skipped_not_running", None)
    assert for_package(stopped, own) == stopped  # a stopped server cannot run any package
    # a registry package keeps the OS rules
    assert (
        for_package(plan_row("skipped_unsupported_os", None), LINUX_YUM)["state"] == "skipped_unsupported_os"
    )
