"""Time buckets of the open-incident index: joint intake looks only where a call can merge.

Open incidents are indexed by the bucket of their last call (``OPEN_BUCKET_S`` wide) and,
inside it, by place (a geo set). A call can join only incidents whose last call is within
the merge window of it, so its candidates lie in the few buckets that window touches: the
search stays bounded however many incidents are left open from earlier in the day.
"""

from __future__ import annotations

import math
from datetime import datetime

# Twenty minutes: a 10-minute window either side of a call touches two buckets, at most three.
OPEN_BUCKET_S = 1200


def time_bucket(ts: datetime, bucket_s: int = OPEN_BUCKET_S) -> int:
    """The bucket number of a moment (epoch seconds // bucket width)."""
    return math.floor(ts.timestamp() / bucket_s)


def buckets_within(ts: datetime, window_s: float, bucket_s: int = OPEN_BUCKET_S) -> list[int]:
    """Every bucket holding a moment within ``window_s`` of ``ts``, oldest first."""
    t = ts.timestamp()
    low = math.floor((t - window_s) / bucket_s)
    high = math.floor((t + window_s) / bucket_s)
    return list(range(low, high + 1))
