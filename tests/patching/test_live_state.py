"""The release's live check reads the group trees once for many servers, each server only if missing."""

from __future__ import annotations

from include.clc.errors import ClcApiError
from include.patching.live_state import server_reader


class Api:
    def __init__(self, listed: list[str], *, trees_fail: bool = False) -> None:
        self.listed, self.trees_fail = listed, trees_fail
        self.calls: list[str] = []

    def inventory(self, alias: str) -> list[dict]:
        self.calls.append("inventory")
        if self.trees_fail:
            raise ClcApiError("GET", "/v2/groups/DEMO/x", 500, "boom")
        return [{"id": sid.upper(), "details": {"inMaintenanceMode": True}} for sid in self.listed]

    def get_server(self, alias: str, server_id: str) -> dict:
        self.calls.append(server_id)
        return {"id": server_id, "details": {"inMaintenanceMode": False}}


IDS = [f"va1s{i:02d}" for i in range(30)]


def test_many_servers_cost_one_tree_read_and_a_get_for_each_missing_one():
    api = Api(IDS[:-1])
    read = server_reader(api, "DEMO", IDS)
    states = {sid: read(sid)["details"]["inMaintenanceMode"] for sid in IDS}
    assert api.calls == ["inventory", IDS[-1]]  # the one the trees do not list: asked on its own
    assert states == {sid: sid != IDS[-1] for sid in IDS}


def test_few_servers_or_unreadable_trees_are_read_one_by_one():
    few = Api(IDS)
    read = server_reader(few, "DEMO", IDS[:3])
    [read(sid) for sid in IDS[:3]]
    assert few.calls == IDS[:3]
    broken = Api(IDS, trees_fail=True)
    read = server_reader(broken, "DEMO", IDS)
    [read(sid) for sid in IDS]
    assert broken.calls == ["inventory", *IDS]
