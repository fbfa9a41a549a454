"""Fixtures of the fault matrix: a migrated metadata DB and a fresh simulator per scenario."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.faults.harness import FAULTS_FLEET, Lab, Launcher, start_launcher, write_fleet

LabFactory = Callable[..., Lab]


@pytest.fixture(scope="session")
def launcher(airflow_db) -> Iterator[Launcher]:
    """How runs are started: forked from a pre-loaded server when possible (see forkserver.py)."""
    started = start_launcher()
    try:
        yield started
    finally:
        started.stop()


@contextmanager
def lab_factory(base: Path, launcher: Launcher) -> Iterator[LabFactory]:
    """Start simulators under ``base`` on demand; stop them all at the end."""
    labs: list[Lab] = []

    def start(*, fleet: Path = FAULTS_FLEET, clock_start: str | None = None) -> Lab:
        home = base / f"lab{len(labs)}"
        home.mkdir(parents=True)
        lab = Lab(home, write_fleet(home / "fleet.yaml", fleet, clock_start=clock_start), launcher)
        labs.append(lab)
        return lab.start()

    try:
        yield start
    finally:
        for lab in labs:
            lab.stop()


@pytest.fixture
def make_lab(launcher, tmp_path) -> Iterator[LabFactory]:
    """A fresh simulator for one scenario: ``make_lab(clock_start=..., fleet=...)``."""
    with lab_factory(tmp_path, launcher) as start:
        yield start


@pytest.fixture(scope="module")
def make_module_lab(launcher, tmp_path_factory) -> Iterator[LabFactory]:
    """The same for a scenario whose run several tests of a module judge."""
    with lab_factory(tmp_path_factory.mktemp("faults"), launcher) as start:
        yield start
