"""Cluster keys and the in-flight limit per cluster (``include.patching.clusters``)."""

from __future__ import annotations

from include.patching.clusters import admit, cluster_by_problem, cluster_key, custom_fields

ROW = {"group_id": "g1", "custom_fields": {"cluster": "db-prod", "healthUrl": "http://x"}}


def test_custom_fields_read_the_api_shape():
    details = {"customFields": [{"id": "1", "name": "cluster", "value": "db", "displayValue": "db"}]}
    assert custom_fields(details) == {"cluster": "db"}
    assert custom_fields(None) == {} and custom_fields({"customFields": None}) == {}


def test_cluster_key_by_custom_field_group_or_none():
    assert cluster_key(ROW, None) == "cluster:db-prod"
    assert cluster_key(ROW, "field:CLUSTER") == "CLUSTER:db-prod"
    assert cluster_key(ROW, "group") == "group:g1"
    assert cluster_key(ROW, "none") is None
    assert cluster_key({"custom_fields": {"cluster": "  "}}, None) is None


def test_cluster_by_problems_name_the_allowed_forms():
    assert cluster_by_problem("group") is None and cluster_by_problem("field:x") is None
    assert "field:<custom field name>" in str(cluster_by_problem("grp"))
    assert cluster_by_problem("field:") is not None


def test_admit_keeps_each_cluster_within_its_limit_counting_what_is_in_flight():
    clusters = {"a": "c1", "b": "c1", "c": "c2", "d": None, "e": "c2"}
    assert admit(["a", "b", "c", "d", "e"], clusters, [], limit=1, slots=10) == ["a", "c", "d"]
    assert admit(["b", "c", "d", "e"], clusters, ["a"], limit=1, slots=10) == ["c", "d"]
    assert admit(["a", "b", "c", "d", "e"], clusters, [], limit=2, slots=3) == ["a", "b", "c"]
