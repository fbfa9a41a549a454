"""Result codes in words: one table for every page that shows a patch's code."""

from __future__ import annotations

import pytest

from include.patching.executions import patch_failed
from include.patching.result_codes import FAILED_CODES, LEGEND, ResultCode, explain


@pytest.mark.parametrize(
    ("code", "label"), [(4, "Failed"), ("4", "Failed"), (" 2 ", "Succeeded"), (5, "Aborted")]
)
def test_a_known_code_is_explained_as_int_or_digits(code, label):
    meaning = explain(code)
    assert meaning is not None and meaning.label == label and meaning.text.startswith(f"{label}: ")


@pytest.mark.parametrize("code", [None, "", "0x80070005", 9, True, 4.0])
def test_anything_else_has_no_meaning_rather_than_a_guess(code):
    assert explain(code) is None


def test_the_legend_lists_every_code_once_in_order_and_failed_codes_are_4_and_5():
    assert [m.code for m in LEGEND] == list(ResultCode)
    assert {ResultCode.FAILED, ResultCode.ABORTED} == FAILED_CODES


def test_the_rollout_judges_patches_by_the_same_failed_codes():
    assert [patch_failed({"status": "completed", "result_code": m.code}) for m in LEGEND] == [
        m.failed for m in LEGEND
    ]
