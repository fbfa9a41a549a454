"""Deterministic generator of large fleets (benchmarks, scale tests).

``generate_fleet_doc(n, seed)`` returns a fleet document (same schema as the YAML files)
and ``generate_fleet(n, seed)`` the validated spec. The same (n, seed) always yields the
same fleet: names, OS mix, groups and patch lists.
"""

from __future__ import annotations

import random

from simulator.fleet_file import FleetSpec, load_fleet_dict

_OS_MIX = [
    ("centOS6_64Bit", 22),
    ("redHat6_64Bit", 14),
    ("redHat7_64Bit", 12),
    ("centOS5_64Bit", 3),
    ("redHat5_64Bit", 3),
    ("windows2012R2DataCenter_64Bit", 18),
    ("windows2012DataCenter_64Bit", 8),
    ("ubuntu14_64Bit", 8),
    ("centOS7_64Bit", 5),
    ("windows2008R2DataCenter_64bit", 4),
    ("debian7_64Bit", 2),
    ("windows2016DataCenter_64Bit", 1),
]
_LINUX_PKGS = [
    "openssl-1.0.1e-42.el6_7.4.x86_64",
    "bash-4.1.2-33.el6_7.1.x86_64",
    "tzdata-2016b-1.el6.noarch",
    "glibc-2.12-1.166.el6_7.7.x86_64",
    "sudo-1.8.6p3-20.el6_7.x86_64",
    "kernel-2.6.32-573.22.1.el6.x86_64",
    "nss-3.21.0-8.el6.x86_64",
    "ntp-4.2.6p5-10.el6.centos.x86_64",
]
_WIN_KBS = [
    ("Security Update for Windows Server 2012 R2", "KB3138615"),
    ("Cumulative Security Update for Internet Explorer 11", "KB3139929"),
    ("Update for Windows Server 2012 R2", "KB3133924"),
    ("Security Update for Microsoft .NET Framework 4.6", "KB3135996"),
    ("Windows Malicious Software Removal Tool x64", "KB890830"),
]
ALIAS = "DEMO"


def generate_fleet_doc(n: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    dcs = ["VA1", "UC1"]
    codes = [c for c, _ in _OS_MIX]
    weights = [w for _, w in _OS_MIX]
    groups = []
    for dc in dcs:
        for t in range(10):
            groups.append({"account": ALIAS, "path": f"{dc}/Tier{t:02d}"})
            for s in range(10):
                groups.append({"account": ALIAS, "path": f"{dc}/Tier{t:02d}/Pool{s:02d}"})
    servers = []
    for i in range(n):
        dc = dcs[i % 2]
        k = i // 2
        os_code = rng.choices(codes, weights)[0]
        windows = os_code.startswith("windows")
        if windows:
            picks = rng.sample(_WIN_KBS, rng.randint(0, 4))
            patches = [
                {"name": title, "kb": kb, "duration": rng.randint(60, 600), "cycle": 1 + (j % 2)}
                for j, (title, kb) in enumerate(picks)
            ]
        else:
            packages = rng.sample(_LINUX_PKGS, rng.randint(0, 5))
            patches = [{"package": p, "duration": rng.randint(20, 240)} for p in packages]
        servers.append(
            {
                "name": f"{dc}{ALIAS}N{k // 99:04d}{k % 99 + 1:02d}",
                "account": ALIAS,
                "group": f"{dc}/Tier{(k // 100) % 10:02d}/Pool{k % 10:02d}",
                "os": os_code,
                "description": f"generated server {i}",
                "power_state": "stopped" if rng.random() < 0.02 else "started",
                "patches": patches,
            }
        )
    return {
        "version": 1,
        "data_centers": [{"id": dc} for dc in dcs],
        "accounts": [
            {
                "alias": ALIAS,
                "name": "Generated Demo Account",
                "users": [
                    {
                        "username": "demo.admin",
                        "password": "demo-password",
                        "roles": ["AccountAdmin", "ServerAdmin"],
                    }
                ],
            }
        ],
        "groups": groups,
        "servers": servers,
    }


def generate_fleet(n: int, seed: int = 0) -> FleetSpec:
    return load_fleet_dict(generate_fleet_doc(n, seed), source=f"<generated n={n} seed={seed}>", seed=seed)
