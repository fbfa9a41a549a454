"""``PatchTuesdayTimetable``: one run per monthly maintenance window, its data interval = the window.

The date logic is ``include.patching.patch_calendar`` (framework-free, unit-tested); this class
only answers the scheduler. Registered by ``patchflow_plugin`` so that the scheduler and the
DAG processor can deserialize it (its classpath is ``patchflow.timetables.PatchTuesdayTimetable``).

- ``run_after`` = the window's start, ``data_interval`` = (start, end): a run knows when its
  window closes (``data_interval_end``).
- Catch-up off (patchflow's policy): the first run is the window open now (it runs at once for
  what is left of it) or the next one; a past window is never run late.
- Catch-up on: every window from the DAG's ``start_date`` onwards.
- ``lead_hours`` (heads-up DAGs): the run is due that long before each window and its data
  interval is (window start - lead, window start); it runs as long as the window has not begun.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from include.patching.patch_calendar import PatchCalendar, Window


def _now() -> pendulum.DateTime:
    """The scheduler's clock (a seam for tests)."""
    return pendulum.now("UTC")


class PatchTuesdayTimetable(Timetable):
    """The nth weekday of each month + an offset, a local start time, a duration, change freezes."""

    def __init__(
        self, calendar: PatchCalendar | None = None, *, lead_hours: int = 0, **settings: Any
    ) -> None:
        self.calendar = calendar if calendar is not None else PatchCalendar.from_dict(settings)
        if isinstance(lead_hours, bool) or not isinstance(lead_hours, int) or not 0 <= lead_hours <= 7 * 24:
            raise ValueError(f"lead_hours: {lead_hours!r} is not a whole number of hours from 0 to 168")
        self.lead_hours = lead_hours
        ahead = f"{lead_hours} h before " if lead_hours else ""
        self.description = ahead + self.calendar.description()

    @property
    def summary(self) -> str:
        ahead = f"{self.lead_hours} h before " if self.lead_hours else ""
        return ahead + self.calendar.summary()

    def serialize(self) -> dict[str, Any]:
        data = self.calendar.to_dict()
        return data | {"lead_hours": self.lead_hours} if self.lead_hours else data

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> PatchTuesdayTimetable:
        settings = dict(data)
        lead = settings.pop("lead_hours", 0)
        return cls(PatchCalendar.from_dict(settings, where="timetable"), lead_hours=lead)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PatchTuesdayTimetable)
            and self.calendar == other.calendar
            and self.lead_hours == other.lead_hours
        )

    def __hash__(self) -> int:
        return hash((self.calendar, self.lead_hours))

    def interval(self, window: Window) -> tuple[pendulum.DateTime, pendulum.DateTime]:
        """A run's data interval: the window, or the lead time before it (heads-up)."""
        start, end = pendulum.instance(window.start), pendulum.instance(window.end)
        if self.lead_hours:
            return start - timedelta(hours=self.lead_hours), start
        return start, end

    def infer_manual_data_interval(self, *, run_after: pendulum.DateTime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        start_after = None  # the next run's interval starts strictly after this
        if last_automated_data_interval is not None:
            start_after = last_automated_data_interval.start
        elif restriction.earliest is not None:
            start_after = restriction.earliest - timedelta(microseconds=1)
        end_after = None if restriction.catchup else _now()  # catch-up off: its interval ends later
        reference = start_after or end_after
        if reference is None:
            return None  # catch-up on and no start_date: nothing to start from
        for window in self.calendar.windows_from(reference):
            start, end = self.interval(window)
            if (start_after is not None and start <= start_after) or (
                end_after is not None and end <= end_after
            ):
                continue
            if restriction.latest is not None and start > restriction.latest:
                return None
            return DagRunInfo(run_after=start, data_interval=DataInterval(start, end))
        return None
