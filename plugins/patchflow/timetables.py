"""``PatchTuesdayTimetable``: one run per monthly maintenance window, its data interval = the window.

The date logic is ``include.patching.patch_calendar`` (framework-free, unit-tested); this class
only answers the scheduler. Registered by ``patchflow_plugin`` so that the scheduler and the
DAG processor can deserialize it (its classpath is ``patchflow.timetables.PatchTuesdayTimetable``).

- ``run_after`` = the window's start, ``data_interval`` = (start, end): a run knows when its
  window closes (``data_interval_end``).
- Catch-up off (patchflow's policy): the first run is the window open now (it runs at once for
  what is left of it) or the next one; a past window is never run late.
- Catch-up on: every window from the DAG's ``start_date`` onwards.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from include.patching.patch_calendar import PatchCalendar


def _now() -> pendulum.DateTime:
    """The scheduler's clock (a seam for tests)."""
    return pendulum.now("UTC")


class PatchTuesdayTimetable(Timetable):
    """The nth weekday of each month + an offset, a local start time, a duration, change freezes."""

    def __init__(self, calendar: PatchCalendar | None = None, **settings: Any) -> None:
        self.calendar = calendar if calendar is not None else PatchCalendar.from_dict(settings)
        self.description = self.calendar.description()

    @property
    def summary(self) -> str:
        return self.calendar.summary()

    def serialize(self) -> dict[str, Any]:
        return self.calendar.to_dict()

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> PatchTuesdayTimetable:
        return cls(PatchCalendar.from_dict(data, where="timetable"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PatchTuesdayTimetable) and self.calendar == other.calendar

    def __hash__(self) -> int:
        return hash(self.calendar)

    def infer_manual_data_interval(self, *, run_after: pendulum.DateTime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        start_after = None
        if last_automated_data_interval is not None:
            start_after = last_automated_data_interval.start
        elif restriction.earliest is not None:
            start_after = restriction.earliest - timedelta(microseconds=1)
        end_after = None if restriction.catchup else _now()
        if start_after is None and end_after is None:
            return None  # catch-up on and no start_date: nothing to start from
        window = self.calendar.next_window(start_after=start_after, end_after=end_after)
        if window is None or (restriction.latest is not None and window.start > restriction.latest):
            return None
        start, end = pendulum.instance(window.start), pendulum.instance(window.end)
        return DagRunInfo(run_after=start, data_interval=DataInterval(start, end))
