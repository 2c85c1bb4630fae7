"""Small statistics the judgements share."""

from __future__ import annotations

import math

#: two-sided 99%: a healthy pair is judged lossy by chance about once in 200 pairs at most
Z = 2.576


def wilson(lost: int, sent: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of a rate `lost` out of `sent`."""
    if sent == 0:
        return 0.0, 1.0
    p = lost / sent
    centre = p + z * z / (2 * sent)
    spread = z * math.sqrt(p * (1 - p) / sent + z * z / (4 * sent * sent))
    scale = 1 + z * z / sent
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)
