"""Simulated time and seeded random streams, so a drill replays exactly.

Models step on plain float seconds since the drill's epoch (cheap, exact on the 1 s grid); the
decision code (green wave, arbiter, whistle) takes aware datetimes, so :class:`SimClock` converts
both ways. Random streams are derived from the drill seed and a stable key (a unit id, a whistle
id) rather than drawn from one shared generator: one more call or one more unit then changes only
its own draws, not every later one, and the paired run without green wave sees the same draws.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class SimClock:
    """Maps simulated seconds to datetimes.

    Attributes:
        epoch: the datetime of second 0 (timezone-aware).
    """

    epoch: datetime

    def __post_init__(self) -> None:
        if self.epoch.tzinfo is None or self.epoch.utcoffset() is None:
            raise ValueError("the drill epoch must be timezone-aware")

    def at(self, seconds: float) -> datetime:
        """The datetime ``seconds`` after the epoch."""
        return self.epoch + timedelta(seconds=seconds)

    def seconds(self, when: datetime) -> float:
        """Seconds from the epoch to ``when`` (negative before it)."""
        return (when - self.epoch).total_seconds()

    def hour_of_day(self, seconds: float) -> float:
        """Local hour of day (0..24, fractional) at ``seconds``, in the epoch's time zone."""
        local = self.at(seconds)
        return local.hour + local.minute / 60.0 + local.second / 3600.0


def substream(seed: int, *keys: object) -> random.Random:
    """An independent generator for one purpose, derived from the drill seed and a key.

    Args:
        seed: the drill seed.
        keys: anything with a stable ``str`` (ids, names, numbers).

    Returns:
        A ``random.Random`` seeded from the string ``"seed|key1|key2..."`` (Python hashes a str
        seed with SHA-512, so this is stable across runs and platforms, unlike ``hash()``).
    """
    return random.Random("|".join([str(seed), *(str(k) for k in keys)]))


def lognormal_s(rng: random.Random, median_s: float, sigma: float) -> float:
    """A lognormal duration given its median (more intuitive to set than the mean).

    Raises:
        ValueError: a non-positive median or negative sigma.
    """
    if median_s <= 0 or sigma < 0:
        raise ValueError("median_s must be positive and sigma non-negative")
    return rng.lognormvariate(math.log(median_s), sigma)
