"""Anomaly detectors on synthetic series with known change points."""

from __future__ import annotations

import random

import pytest

from spokehub.intelligence.detectors import EWMA, DetectorBank, RobustZScore


def _series(seed: int, n: int, mean: float, sd: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def test_robust_z_flags_a_spike_and_not_the_noise_around_it() -> None:
    det = RobustZScore(window=50, threshold=3.5)
    values = _series(1, 200, 1.0, 0.05)
    values[150] = 2.0
    flagged = [i for i, v in enumerate(values) if det.update(v) is not None]
    assert 150 in flagged
    assert len(flagged) <= 3  # the spike, and at most a couple of noise points


def test_robust_z_is_not_fooled_by_outliers_in_its_own_window() -> None:
    det = RobustZScore(window=30, threshold=3.5, include_anomalies=True)
    values = _series(2, 100, 10.0, 0.5)
    for i in (40, 45, 50, 55):  # a few wild values inside the window
        values[i] = 100.0
    values[58] = 14.0  # 8 sigma out: must still be seen despite the wild values nearby
    hits = {i for i, v in enumerate(values) if det.update(v) is not None}
    assert {40, 45, 50, 55, 58} <= hits


def test_robust_z_gives_no_verdict_before_min_samples() -> None:
    det = RobustZScore(min_samples=10)
    assert all(det.update(v) is None for v in [1.0] * 9 + [1000.0])
    assert det.update(1000.0) is not None  # now the baseline exists


def test_flat_series_uses_the_scale_floor() -> None:
    det = RobustZScore(min_samples=5, min_scale=0.5)
    for _ in range(10):
        assert det.update(3.0) is None
    assert det.update(3.4) is None  # within 3.5 * 0.5 of the median
    anomaly = det.update(5.0)
    assert anomaly is not None
    assert anomaly.score == pytest.approx(4.0)
    assert anomaly.expected == 3.0


def test_ewma_detects_a_small_sustained_shift_that_the_z_score_misses() -> None:
    # failure rate creeping up by 1.5 sigma at index 300
    values = _series(3, 300, 0.02, 0.01) + _series(4, 200, 0.035, 0.01)
    ewma = EWMA(alpha=0.1, limit=2.7, warmup=50)
    robust = RobustZScore(window=100, threshold=3.5)
    ewma_hits = [i for i, v in enumerate(values) if ewma.update(v) is not None]
    z_hits = [i for i, v in enumerate(values) if robust.update(v) is not None]
    first = next(i for i in ewma_hits if i >= 300)
    assert first - 300 <= 30, f"EWMA took {first - 300} points to see the shift"
    assert sum(1 for i in ewma_hits if i < 300) <= 2  # false alarms before the change
    assert not any(300 <= i < first for i in z_hits)  # the z-score did not see it sooner


def test_ewma_false_alarm_rate_in_control_is_low() -> None:
    ewma = EWMA(alpha=0.1, limit=2.7, warmup=50)
    values = _series(5, 5_050, 5.0, 1.0)
    alarms = sum(1 for v in values if ewma.update(v) is not None)
    assert alarms / 5_000 < 0.01  # average run length ~500 at these settings


def test_ewma_rebaseline_learns_the_new_level() -> None:
    ewma = EWMA(alpha=0.3, limit=3.0, warmup=25, rebaseline=True)
    for v in _series(6, 30, 1.0, 0.01):
        ewma.update(v)
    alarm_at = None
    for i, v in enumerate(_series(7, 60, 2.0, 0.01)):
        if ewma.update(v) is not None and alarm_at is None:
            alarm_at = i
    assert alarm_at is not None
    assert alarm_at < 3
    # after re-learning at the new level, more of the same is normal again (a rare false
    # alarm is the chart's nature; a level it had not learned would alarm on every point)
    assert sum(ewma.update(v) is not None for v in _series(8, 100, 2.0, 0.01)) <= 1


def test_bank_keeps_one_detector_per_series_and_reports_anomalies() -> None:
    seen = []
    bank = DetectorBank(lambda key: RobustZScore(key=key, min_samples=5), on_anomaly=seen.append)
    for i in range(20):
        bank.observe(("duration", "deploy", "push"), 1.0 + (i % 3) * 0.01)
        bank.observe(("duration", "deploy", "check"), 5.0 + (i % 3) * 0.01)
    assert bank.observe(("duration", "deploy", "push"), 5.0) is not None
    assert bank.observe(("duration", "deploy", "check"), 5.0) is None  # normal for that one
    assert [a.key for a in seen] == [("duration", "deploy", "push")]
    assert len(bank) == 2


def test_bank_bounds_its_series() -> None:
    bank = DetectorBank(lambda key: EWMA(key=key), max_series=3)
    for k in range(10):
        bank.observe(k, 1.0)
    assert len(bank) == 3


@pytest.mark.parametrize(
    "make",
    [
        lambda: RobustZScore(window=2),
        lambda: RobustZScore(threshold=0),
        lambda: EWMA(alpha=0),
        lambda: EWMA(warmup=1),
    ],
)
def test_bad_settings_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):  # noqa: PT011 - each message differs
        make()


@pytest.mark.parametrize("det", [RobustZScore(), EWMA()])
def test_non_finite_values_are_refused(det) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="finite"):
        det.update(float("nan"))
