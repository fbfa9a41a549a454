"""Registry of the Patching-as-a-Service packages this project drives.

One entry per patch package. The DAG generates one TaskGroup per entry, and the
classification rules map OS codes onto these keys, so adding a package is one edit here.
Package ids are the canonical pair from the CLC API docs and the official CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PatchPackage:
    """A vendor patch package and how to call it."""

    key: str
    """Short identifier used in task ids and reports (``[a-z0-9_]+``)."""
    package_id: str
    title: str
    os_family: str
    """``linux`` or ``windows``: how the patch list reads (package names vs KB numbers)."""
    default_parameters: dict[str, str] = field(default_factory=dict)

    def parameters(self, *, patch_debug_mode: bool = False) -> dict[str, str]:
        """The ``package.parameters`` map for an Execute Package request."""
        params = dict(self.default_parameters)
        if "patch.debug.mode" in params:
            params["patch.debug.mode"] = "true" if patch_debug_mode else "false"
        return params


LINUX_YUM = PatchPackage(
    key="linux_yum",
    package_id="c3c6642e-24e1-4c37-b56a-1cf1476ee360",
    title="Yum Update (RHEL 5/6/7, CentOS 5/6)",
    os_family="linux",
    default_parameters={"patch.debug.mode": "false"},
)
WINDOWS_2012 = PatchPackage(
    key="windows_2012",
    package_id="b229535c-a313-4a31-baf8-6aa71ff4b9ed",
    title="Auto Patching Windows 2012 / 2012 R2",
    os_family="windows",
)

PACKAGES: tuple[PatchPackage, ...] = (LINUX_YUM, WINDOWS_2012)
BY_KEY: dict[str, PatchPackage] = {p.key: p for p in PACKAGES}
BY_ID: dict[str, PatchPackage] = {p.package_id: p for p in PACKAGES}


def package_for(key_or_id: str) -> PatchPackage:
    """A registry package by key or id, else a package known only by its id.

    ``ExecutePackageOperator`` accepts any Execute Package id (a team's own script package, say);
    such a package gets a stable key from its id so ledgers and results are named the same way.
    """
    value = str(key_or_id).strip()
    known = BY_KEY.get(value) or BY_ID.get(value.lower())
    if known is not None:
        return known
    if not _PACKAGE_ID.match(value):
        raise ValueError(
            f"package {value!r} is neither a registry key ({', '.join(sorted(BY_KEY))}) nor a package id"
        )
    return PatchPackage(
        key=f"package_{value[:8].lower()}", package_id=value.lower(), title=value, os_family="other"
    )


_PACKAGE_ID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
