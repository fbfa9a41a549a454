"""What a patch's result code means, in words, for every page that shows one.

Patching-as-a-Service reports each patch's outcome in ``patch_end_message`` as a number: the
values of Microsoft's Windows Update ``OperationResultCode``, reused for Linux packages too
(docs/clc-api-v2.md §9.3). A report that says "failed code 4" explains nothing by itself, so
the run report (a legend and an inline explanation) and anything else showing codes — e.g. the
live run board — take the words from here:

    >>> explain(4).label
    'Failed'
    >>> [m.code for m in LEGEND]
    [0, 1, 2, 3, 4, 5]

``FAILED_CODES`` is the rule ``include.patching.executions`` judges a patch by.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ResultCode(IntEnum):
    """Windows Update ``OperationResultCode`` values, as the patching service reports them."""

    NOT_STARTED = 0
    IN_PROGRESS = 1
    SUCCEEDED = 2
    SUCCEEDED_WITH_ERRORS = 3
    FAILED = 4
    ABORTED = 5


@dataclass(frozen=True)
class CodeMeaning:
    """One code as a person reads it: ``code 4 — Failed: …``."""

    code: int
    label: str
    meaning: str
    failed: bool

    @property
    def text(self) -> str:
        return f"{self.label}: {self.meaning}"


LEGEND: tuple[CodeMeaning, ...] = (
    CodeMeaning(ResultCode.NOT_STARTED, "Not started", "the update was never begun", False),
    CodeMeaning(ResultCode.IN_PROGRESS, "In progress", "the update had not finished when reported", False),
    CodeMeaning(ResultCode.SUCCEEDED, "Succeeded", "the update was installed", False),
    CodeMeaning(
        ResultCode.SUCCEEDED_WITH_ERRORS,
        "Succeeded with errors",
        "installed, but the installer reported errors; check the server",
        False,
    ),
    CodeMeaning(ResultCode.FAILED, "Failed", "the update could not be installed", True),
    CodeMeaning(ResultCode.ABORTED, "Aborted", "the installation was stopped before it completed", True),
)
_BY_CODE = {meaning.code: meaning for meaning in LEGEND}
#: Codes that mean the patch is not installed (the rollout judges a server failed by them).
FAILED_CODES = frozenset(m.code for m in LEGEND if m.failed)


def explain(code: Any) -> CodeMeaning | None:
    """The meaning of ``code`` (an int or its digits), None when it is no known code."""
    if isinstance(code, bool):
        return None
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code.strip())
    return _BY_CODE.get(code) if isinstance(code, int) else None
