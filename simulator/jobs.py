"""Queue jobs (``/v2/operations/{alias}/status/{jobId}``).

A job's status is a pure function of the clock: ``notStarted`` until ``start``,
``executing`` until ``end``, then its final status. Nothing needs ticking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Job:
    id: str  # "va1-10001", lower-case
    alias: str
    kind: str  # operation name, e.g. "reboot", "executePackage"
    created: float
    start: float
    end: float
    final_status: str = "succeeded"  # "succeeded" | "failed"
    servers: list[str] = field(default_factory=list)

    def status(self, now: float) -> str:
        if now < self.start:
            return "notStarted"
        if now < self.end:
            return "executing"
        return self.final_status

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        return cls(**data)
