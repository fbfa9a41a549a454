"""One knob scales every timing default; an explicit setting still wins."""

from __future__ import annotations

import pytest

from include.patching.tuning import PRODUCTION, SIZES, Tuning, resolve, resolve_sizes


def reader(values: dict[str, str]):
    return values.get


def test_time_scale_multiplies_every_setting():
    scaled = PRODUCTION.scaled(0.01)
    for name in Tuning.names():
        assert getattr(scaled, name) == pytest.approx(getattr(PRODUCTION, name) * 0.01), name
        if getattr(PRODUCTION, name):  # a setting that is 0 (an override may set one) stays 0 scaled
            assert getattr(scaled, name) != getattr(PRODUCTION, name), f"{name} left at its production value"


def test_resolution_scale_then_per_setting_overrides_as_given():
    tuning, scale = resolve(reader({"time_scale": "0.01", "batch_window": "3"}))
    assert scale == 0.01
    assert tuning.batch_window == 3.0  # an explicit setting wins and is not scaled again
    assert tuning.poll_interval == pytest.approx(0.1)
    assert resolve(reader({})) == (PRODUCTION, 1.0)


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf"])
def test_a_nonsense_time_scale_is_refused(bad):
    with pytest.raises(ValueError, match="time_scale must be a number > 0"):
        resolve(reader({"time_scale": bad}))


def test_unknown_override_names_are_refused():
    with pytest.raises(ValueError, match="unknown timing setting"):
        PRODUCTION.with_overrides({"not_found_grace": 3.0})


def test_sizes_are_counts_never_scaled_and_bad_ones_are_named():
    assert resolve_sizes(reader({"time_scale": "0.01"})) == SIZES
    assert resolve_sizes(reader({"request_chunk": "12"})).request_chunk == 12
    for bad in ("0", "-3", "2.5", "many"):
        with pytest.raises(ValueError, match=f"request_chunk must be a whole number >= 1, got '{bad}'"):
            resolve_sizes(reader({"request_chunk": bad}))
