"""Online anomaly detectors over metric streams: robust z-score and EWMA control charts.

Both detectors see one value at a time, keep a bounded state, and answer whether the value is
anomalous *relative to what came before it* (the value is judged before it joins the
baseline, so a spike cannot hide itself by widening its own limits).

- ``RobustZScore``: the median and the median absolute deviation (MAD) of a sliding window.
  Robust because one outlier moves neither statistic much; good for step durations and costs,
  whose distributions have long tails.
- ``EWMA``: an exponentially weighted moving average with control limits (Roberts' EWMA
  chart). Sensitive to small sustained shifts that a z-score misses, such as a failure rate
  creeping from 2% to 6%.

A ``DetectorBank`` keeps one detector per series key, e.g. ``("duration", workflow, step)`` or
``("failure_rate", target)``, and hands each anomaly to a callback (the seam where events,
metrics and dashboard markers are produced).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["EWMA", "Anomaly", "Detector", "DetectorBank", "RobustZScore"]

# 1 / Phi^-1(3/4): scales the MAD of a normal sample to its standard deviation.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One value a detector judged out of line.

    Attributes:
        key: the series it belongs to (the bank's key; ``None`` for a lone detector).
        value: the observed value.
        score: how far out it is, in (robust) standard deviations; the sign gives the side.
        expected: the baseline (median or EWMA centre) it was compared with.
        detector: ``"robust_z"`` or ``"ewma"``.
        index: the position of the value in its series (0-based).
    """

    key: Hashable
    value: float
    score: float
    expected: float
    detector: str
    index: int


class Detector(Protocol):
    """An online detector: ``update`` one value, get an anomaly or None."""

    def update(self, value: float) -> Anomaly | None: ...


@dataclass(slots=True)
class RobustZScore:
    """Robust z-score on a sliding window: ``|x - median| / (1.4826 * MAD) > threshold``.

    Args:
        window: how many recent values form the baseline.
        threshold: the score above which a value is anomalous (3.5 is Iglewicz and Hoaglin's
            recommendation for the modified z-score).
        min_samples: no verdict until the window holds this many values.
        min_scale: a floor for the scale, so a perfectly flat series (MAD = 0) does not call
            every tiny wobble an anomaly; in the series' own unit.
        include_anomalies: whether anomalous values join the baseline (False keeps one long
            incident from becoming the new normal; True adapts to level shifts).
    """

    window: int = 50
    threshold: float = 3.5
    min_samples: int = 10
    min_scale: float = 1e-9
    include_anomalies: bool = True
    key: Hashable = None
    _values: deque[float] = field(init=False)
    _sorted: list[float] = field(init=False)
    _count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.window < 3 or self.min_samples < 3 or self.min_samples > self.window:
            raise ValueError("need 3 <= min_samples <= window")
        if self.threshold <= 0:
            raise ValueError("threshold must be positive")
        self._values = deque()
        self._sorted = []

    def update(self, value: float) -> Anomaly | None:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"a detector takes finite numbers, got {value!r}")
        index = self._count
        self._count += 1
        anomaly = None
        if len(self._sorted) >= self.min_samples:
            median = _median(self._sorted)
            mad = _median(sorted(abs(v - median) for v in self._sorted))
            scale = max(_MAD_TO_SIGMA * mad, self.min_scale)
            score = (value - median) / scale
            if abs(score) > self.threshold:
                anomaly = Anomaly(self.key, value, score, median, "robust_z", index)
        if anomaly is None or self.include_anomalies:
            self._push(value)
        return anomaly

    def _push(self, value: float) -> None:
        self._values.append(value)
        bisect.insort(self._sorted, value)
        if len(self._values) > self.window:
            old = self._values.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]


@dataclass(slots=True)
class EWMA:
    """EWMA control chart: ``z = a*x + (1-a)*z``, alarm when ``z`` leaves ``mu +- L*sigma_z``.

    The first ``warmup`` values estimate the in-control mean and standard deviation; after
    that the chart watches. ``sigma_z`` uses the exact time-varying factor
    ``sqrt(a/(2-a) * (1-(1-a)^(2t)))``, so the first points after warm-up are not judged with
    the asymptotic (wider) limits.

    Args:
        alpha: weight of the newest value (0.05-0.3 is usual; smaller detects smaller shifts).
        limit: L, the width of the control limits in sigmas (3 is usual; 2.7 with alpha 0.1
            gives an in-control run length near 500).
        warmup: how many values set the baseline.
        min_sigma: a floor for the baseline sigma (a constant warm-up would give 0).
        rebaseline: after an alarm, learn a new baseline from the next ``warmup`` values
            (the process changed; keep reporting against the old one otherwise).
    """

    alpha: float = 0.2
    limit: float = 3.0
    warmup: int = 20
    min_sigma: float = 1e-9
    rebaseline: bool = False
    key: Hashable = None
    _n: int = field(init=False, default=0)
    _sum: float = field(init=False, default=0.0)
    _sumsq: float = field(init=False, default=0.0)
    _mu: float = field(init=False, default=0.0)
    _sigma: float = field(init=False, default=0.0)
    _z: float = field(init=False, default=0.0)
    _t: int = field(init=False, default=0)
    _count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        if self.limit <= 0 or self.warmup < 2:
            raise ValueError("need limit > 0 and warmup >= 2")

    def update(self, value: float) -> Anomaly | None:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"a detector takes finite numbers, got {value!r}")
        index = self._count
        self._count += 1
        if self._n < self.warmup:
            self._learn(value)
            return None
        a = self.alpha
        self._t += 1
        self._z = a * value + (1 - a) * self._z
        width = self._sigma * math.sqrt(a / (2 - a) * (1 - (1 - a) ** (2 * self._t)))
        deviation = self._z - self._mu
        if abs(deviation) <= self.limit * width:
            return None
        anomaly = Anomaly(self.key, value, deviation / width, self._mu, "ewma", index)
        if self.rebaseline:
            self._n = 0
            self._sum = self._sumsq = 0.0
        return anomaly

    def _learn(self, value: float) -> None:
        self._n += 1
        self._sum += value
        self._sumsq += value * value
        if self._n == self.warmup:
            n = self._n
            self._mu = self._sum / n
            var = max(self._sumsq / n - self._mu * self._mu, 0.0) * n / (n - 1)
            self._sigma = max(math.sqrt(var), self.min_sigma)
            self._z = self._mu
            self._t = 0


class DetectorBank:
    """One detector per series key, made on first use by ``factory(key)``.

    Example:
        >>> bank = DetectorBank(lambda key: RobustZScore(key=key), on_anomaly=print)
        >>> bank.observe(("duration", "deploy", "push"), 1.2)  # None until there is a baseline
    """

    def __init__(
        self,
        factory: Callable[[Hashable], Detector],
        *,
        on_anomaly: Callable[[Anomaly], None] | None = None,
        max_series: int = 10_000,
    ) -> None:
        self._factory = factory
        self._on_anomaly = on_anomaly
        self._max_series = max_series
        self._detectors: dict[Hashable, Detector] = {}

    def observe(self, key: Hashable, value: float) -> Anomaly | None:
        detector = self._detectors.get(key)
        if detector is None:
            if len(self._detectors) >= self._max_series:
                # Unbounded label sets (run ids as keys) would grow memory forever: drop the
                # oldest series, which is the least recently created.
                self._detectors.pop(next(iter(self._detectors)))
            detector = self._detectors[key] = self._factory(key)
        anomaly = detector.update(value)
        if anomaly is not None and self._on_anomaly is not None:
            self._on_anomaly(anomaly)
        return anomaly

    def __len__(self) -> int:
        return len(self._detectors)


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
