"""I9: every data center, group and server a person names must exist in the alias, all named at once."""

from __future__ import annotations

from include.patching.scope import AliasIndex, scope_problems, walk_groups

ROOT_VA1, ROOT_DE1 = "a0" * 16, "d0" * 16
FINANCE, FIN_PROD, PROD, WEB, DE_WEB = "f1" * 16, "f2" * 16, "f3" * 16, "b1" * 16, "d1" * 16


def link(sid: str) -> dict:
    return {"rel": "server", "href": f"/v2/servers/demo/{sid.lower()}", "id": sid}


def group(gid: str, name: str, servers=(), groups=()) -> dict:
    """A group as Get Group answers without serverDetail: servers only as links (upper-case ids)."""
    return {
        "id": gid,
        "name": name,
        "groups": list(groups),
        "links": [{"rel": "self", "href": f"/v2/groups/demo/{gid}"}, *map(link, servers)],
    }


TREES = [
    (
        "va1",
        group(
            ROOT_VA1,
            "VA1 Hardware",
            groups=[
                group(WEB, "Web", ["VA1DEMOWEB01", "VA1DEMOWEB09"]),
                group(FIN_PROD, "Finance/Prod", ["VA1DEMOFIN01"]),
                group(FINANCE, "Finance", groups=[group(PROD, "Prod", ["VA1DEMOPRD01"])]),
            ],
        ),
    ),
    ("de1", group(ROOT_DE1, "DE1 Hardware", groups=[group(DE_WEB, "Web EU", ["DE1DEMOWEB01"])])),
]
INDEX = AliasIndex.build("DEMO", ["va1", "de1", "uc1"], TREES)


def problems(**scope) -> list[str]:
    args = {"data_centers": [], "groups": [], "allow": [], "deny": []} | scope
    return scope_problems(index=INDEX, **args)


def test_the_index_knows_every_server_and_its_lineage():
    assert set(INDEX.servers) == {
        "va1demoweb01",
        "va1demoweb09",
        "va1demofin01",
        "va1demoprd01",
        "de1demoweb01",
    }
    prd = INDEX.servers["va1demoprd01"]
    assert prd.data_center == "VA1"
    assert prd.group_path_names == ("VA1 Hardware", "Finance", "Prod")
    assert prd.group_path_ids == (ROOT_VA1, FINANCE, PROD)
    assert INDEX.servers["va1demofin01"].group_path_names == ("VA1 Hardware", "Finance/Prod")
    assert INDEX.data_centers == ("DE1", "UC1", "VA1")


def test_detailed_trees_give_the_same_servers_as_links():
    detailed = group(WEB, "Web")
    detailed["servers"] = [{"id": "va1demoweb01", "os": "centOS6_64Bit"}]
    (node,) = walk_groups(detailed)
    assert node.server_ids == ("va1demoweb01",) and node.servers[0]["os"] == "centOS6_64Bit"


def test_a_scope_that_names_only_existing_things_passes():
    assert (
        problems(
            data_centers=["VA1", "UC1"],
            groups=["Prod", "Finance/Prod", WEB.upper()],
            allow=["va1demoprd01"],
            deny=["va1demoweb09", "de1demoweb01"],  # denying a server elsewhere is harmless
        )
        == []
    )


def test_a_typo_in_the_deny_list_is_named_with_a_close_match():
    assert problems(deny=["va1demoweb99"]) == [
        "server_deny_list: 'va1demoweb99' is not a server of alias DEMO (did you mean 'va1demoweb09'?)"
    ]


def test_every_missing_entry_is_named_at_once():
    found = problems(
        data_centers=["VA1", "XX9", "de2"],
        groups=["Prdo", "Marketing", "0" * 32],
        allow=["va1demoprd01", "va1nothing77"],
        deny=["va1demoweb99", "zz"],
    )
    assert found == [
        "data_centers: 'XX9' is not a data center of alias DEMO; the alias has DE1, UC1, VA1",
        "data_centers: 'de2' is not a data center of alias DEMO (did you mean 'DE1'?); "
        "the alias has DE1, UC1, VA1",
        "groups: 'Prdo' is neither the name nor the id of a group of alias DEMO (did you mean 'Prod'?)",
        "groups: 'Marketing' is neither the name nor the id of a group of alias DEMO",
        f"groups: {'0' * 32!r} is neither the name nor the id of a group of alias DEMO",
        "server_allow_list: 'va1nothing77' is not a server of alias DEMO",
        "server_deny_list: 'va1demoweb99' is not a server of alias DEMO (did you mean 'va1demoweb09'?)",
        "server_deny_list: 'zz' is not a server of alias DEMO",
    ]


def test_a_slash_is_part_of_a_group_name_not_a_path():
    assert problems(groups=["Finance/Prod"]) == []
    assert problems(groups=["VA1 Hardware/Web"]) == [
        "groups: 'VA1 Hardware/Web' is neither the name nor the id of a group of alias DEMO "
        "(did you mean 'VA1 Hardware'?)"
    ]


def test_selections_that_would_silently_select_nothing_are_named():
    found = problems(data_centers=["VA1"], groups=["Web EU"], allow=["de1demoweb01"])
    assert found == [
        "groups: 'Web EU' is only in data center DE1, which data_centers does not select, "
        "so it would select nothing",
        "server_allow_list: 'de1demoweb01' is in data center DE1, which data_centers does not select, "
        "so it would never be patched",
    ]
    assert problems(groups=["Prod"], allow=["va1demoweb01"]) == [
        "server_allow_list: 'va1demoweb01' is in group 'VA1 Hardware > Web', under none of the "
        "selected groups, so it would never be patched"
    ]
    assert problems(groups=["Finance"], allow=["va1demoprd01"]) == []  # inside a sub-group


def test_a_mistyped_group_id_gets_the_real_id_as_hint():
    typo = WEB[:-1] + "x"
    assert problems(groups=[typo]) == [
        f"groups: {typo!r} is neither the name nor the id of a group of alias DEMO (did you mean {WEB!r}?)"
    ]
