"""Which servers an ``ExecutePackageOperator`` sends its package to, as plan rows.

Named servers or a group's (with its sub-groups), checked against the alias first with the
same rules and sentences as ``patch_fleet``'s preflight (every unknown name at once, with a
"did you mean" hint), then inventoried and classified like ``patch_fleet``'s servers: a template,
an inactive or stopped server, or one whose OS the package does not patch is skipped with its
reason instead of being sent a package that cannot run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.patching.classification import Scope
from include.patching.packages import BY_KEY, PatchPackage
from include.patching.scope import AliasIndex, scope_problems
from include.patching.states import ServerState


def _unknown(problems: Sequence[str]) -> AirflowFailException:
    lines = "\n".join(f"  - {p}" for p in problems)
    return AirflowFailException(f"Invalid targets; nothing was touched:\n{lines}")


def select_rows(
    hook: Any, alias: str, *, server_ids: Sequence[str], group: str | None
) -> list[dict[str, Any]]:
    """Plan rows (``patchflow.tasks.plan_row``) of the named servers and the group's servers."""
    from patchflow.tasks import plan_row

    if not server_ids and not group:
        raise AirflowFailException("ExecutePackageOperator needs server_ids or a group")
    trees = hook.group_trees(alias, detailed=False)
    index = AliasIndex.build(alias, [dc for dc, _ in trees], trees)
    groups = [group] if group else []
    problems = scope_problems(data_centers=(), groups=groups, allow=(), deny=(), index=index)
    problems += scope_problems(data_centers=(), groups=(), allow=server_ids, deny=(), index=index)
    if problems:
        raise _unknown([p.replace("server_allow_list", "server_ids") for p in problems])
    # The group and the server list each select servers: together they are a union.
    scopes = [s for s in (Scope.build(groups=groups), Scope.build(allow=server_ids)) if s.groups or s.allow]
    rows: dict[str, dict[str, Any]] = {}
    for server in hook.inventory(alias):
        for scope in scopes:
            row = plan_row(server, scope, dry_run=False)
            if row["state"] != ServerState.SKIPPED_FILTERED:
                rows.setdefault(row["id"], row)
    return [rows[sid] for sid in sorted(rows)]


def for_package(row: dict[str, Any], package: PatchPackage) -> dict[str, Any]:
    """The row retargeted at the requested package.

    A registry package keeps the OS rules: a server its OS sends to another package is skipped
    (``skipped_unsupported_os``, saying which package it needs). A package known only by its id
    is sent to every running, active, non-template server: the OS rules cannot know it.
    """
    needed = row["package_key"]
    if row["state"] not in (None, ServerState.SKIPPED_UNSUPPORTED_OS):
        return row
    if package.key in BY_KEY and needed != package.key:
        if row["state"] is None:
            reason = f"{row.get('os_type') or row.get('os')} is patched by {needed}, not by {package.key}"
            return row | {"state": ServerState.SKIPPED_UNSUPPORTED_OS.value, "reason": reason}
        return row
    return row | {"package_key": package.key, "package_id": package.package_id, "state": None, "reason": ""}
