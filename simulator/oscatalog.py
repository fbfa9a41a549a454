"""OS codes, friendly names and patch packages (reference §5.4, §8.1, §9.1).

Codes are matched case-insensitively because the real platform spelled them
inconsistently (``_64Bit`` vs ``_64bit``, ``DataCenter`` vs ``Datacenter``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LINUX_PATCH_PACKAGE = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"
WINDOWS_PATCH_PACKAGE = "b229535c-a313-4a31-baf8-6aa71ff4b9ed"
#: Package ids from older KB revisions, accepted as aliases of the canonical pair (§12 #16).
PACKAGE_ALIASES = {
    "5d743f04-a9ce-4174-a7c8-52df93c47c08": LINUX_PATCH_PACKAGE,
    "94bd395f-9b54-4693-94ae-4f3aa93fc239": WINDOWS_PATCH_PACKAGE,
}
#: A harmless non-patch script package, so that clients can tell "package" from "patch package".
GENERIC_PACKAGE = "6a1f3e7a-0b5e-4c6e-9a43-7d2d1c5b9e10"


@dataclass(frozen=True)
class OsInfo:
    """One OS code: its friendly ``osType``, family and whether patching supports it."""

    code: str
    friendly: str
    family: str  # "linux" or "windows"
    patch_package: str | None  # None = not supported by Patching-as-a-Service
    label: str  # short label used by windows update URLs / e-mails


_OS_LIST = [
    OsInfo("centOS5_64Bit", "CentOS 5 64-bit", "linux", LINUX_PATCH_PACKAGE, "el5"),
    OsInfo("centOS6_64Bit", "CentOS 6 64-bit", "linux", LINUX_PATCH_PACKAGE, "el6"),
    OsInfo("centOS7_64Bit", "CentOS 7 64-bit", "linux", None, "el7"),
    OsInfo("redHat5_64Bit", "RedHat Enterprise Linux 5 64-bit", "linux", LINUX_PATCH_PACKAGE, "el5"),
    OsInfo("redHat6_64Bit", "RedHat Enterprise Linux 6 64-bit", "linux", LINUX_PATCH_PACKAGE, "el6"),
    OsInfo("redHat7_64Bit", "RedHat Enterprise Linux 7 64-bit", "linux", LINUX_PATCH_PACKAGE, "el7"),
    OsInfo(
        "windows2012DataCenter_64Bit",
        "Windows 2012 Datacenter 64-bit",
        "windows",
        WINDOWS_PATCH_PACKAGE,
        "windows8-rt",
    ),
    OsInfo(
        "windows2012R2DataCenter_64Bit",
        "Windows 2012 R2 Datacenter 64-bit",
        "windows",
        WINDOWS_PATCH_PACKAGE,
        "windows8.1",
    ),
    OsInfo(
        "windows2008R2DataCenter_64bit", "Windows 2008 R2 Datacenter 64-bit", "windows", None, "windows6.1"
    ),
    OsInfo("windows2008R2Standard_64bit", "Windows 2008 R2 Standard 64-bit", "windows", None, "windows6.1"),
    OsInfo("windows2008_64bit", "Windows 2008 64-bit", "windows", None, "windows6.0"),
    OsInfo("windows2016DataCenter_64Bit", "Windows 2016 Datacenter 64-bit", "windows", None, "windows10.0"),
    OsInfo("ubuntu12_64Bit", "Ubuntu 12 64-bit", "linux", None, "ubuntu"),
    OsInfo("ubuntu14_64Bit", "Ubuntu 14 64-bit", "linux", None, "ubuntu"),
    OsInfo("ubuntu16_64Bit", "Ubuntu 16 64-bit", "linux", None, "ubuntu"),
    OsInfo("debian6_64Bit", "Debian 6 64-bit", "linux", None, "debian"),
    OsInfo("debian7_64Bit", "Debian 7 64-bit", "linux", None, "debian"),
    OsInfo("pxeBoot", "PXE Boot", "linux", None, "pxe"),
]
_BY_LOWER = {info.code.lower(): info for info in _OS_LIST}
KNOWN_OS_CODES = [info.code for info in _OS_LIST]


def lookup_os(code: str) -> OsInfo | None:
    """Return the OS entry for ``code`` (any casing), or None when unknown."""
    return _BY_LOWER.get(code.lower())


def canonical_package(package_id: str) -> str:
    """Map an accepted package-id alias to its canonical id (lower-case, dashed)."""
    pid = package_id.strip().lower()
    return PACKAGE_ALIASES.get(pid, pid)


def is_patch_package(package_id: str) -> bool:
    return canonical_package(package_id) in (LINUX_PATCH_PACKAGE, WINDOWS_PATCH_PACKAGE)


# The package list exactly as GET /v2/operations/.../packages serves it (JSON).
PACKAGES: list[dict[str, Any]] = [
    {
        "id": LINUX_PATCH_PACKAGE,
        "name": "Yum Update",
        "description": "Patching as-a-Service: applies every available vendor update with yum "
        "(kernel and nss packages excluded), rebooting until nothing is left.",
        "visibility": "public",
        "parameters": [
            {
                "variable": "patch.debug.mode",
                "name": "Debug mode",
                "type": "option",
                "defaultValue": "false",
                "required": False,
                "regex": "",
                "hint": "Write verbose logs on the server",
                "options": [{"name": "true", "value": "true"}, {"name": "false", "value": "false"}],
            }
        ],
        "supportedOSTypes": [i.code for i in _OS_LIST if i.patch_package == LINUX_PATCH_PACKAGE],
    },
    {
        "id": WINDOWS_PATCH_PACKAGE,
        "name": "Auto Patching Windows 2012",
        "description": "Patching as-a-Service: applies every available Windows update, "
        "rebooting until nothing is left.",
        "visibility": "public",
        "parameters": [],
        "supportedOSTypes": [i.code for i in _OS_LIST if i.patch_package == WINDOWS_PATCH_PACKAGE],
    },
    {
        "id": GENERIC_PACKAGE,
        "name": "Print Uptime",
        "description": "Harmless script package (simulator): runs 'uptime' and exits.",
        "visibility": "public",
        "parameters": [],
        "supportedOSTypes": [i.code for i in _OS_LIST],
    },
]
KNOWN_PACKAGES: set[str] = {p["id"] for p in PACKAGES}

ROLES = [
    "AccountAdmin",
    "AccountViewer",
    "BillingAdmin",
    "DNSManager",
    "NetworkAdmin",
    "SecurityAdmin",
    "ServerAdmin",
    "ServerOperator",
    "ServerScheduler",
]
#: Roles allowed to run server operations (power, maintenance, snapshots, packages).
OPERATOR_ROLES = {"AccountAdmin", "ServerAdmin", "ServerOperator"}

KNOWN_DATA_CENTERS = {
    "CA1": "CA1 - Canada (Vancouver)",
    "CA2": "CA2 - Canada (Vancouver)",
    "CA3": "CA3 - Canada (Toronto)",
    "DE1": "DE1 - Germany (Frankfurt)",
    "GB1": "GB1 - Great Britain (Portsmouth)",
    "GB3": "GB3 - Great Britain (Slough)",
    "IL1": "IL1 - US Central (Chicago)",
    "NY1": "NY1 - US East (New York)",
    "SG1": "SG1 - APAC (Singapore)",
    "UC1": "UC1 - US West (Santa Clara)",
    "UT1": "UT1 - US Central (Salt Lake City)",
    "VA1": "VA1 - US East (Sterling)",
    "WA1": "WA1 - US West (Seattle)",
}
