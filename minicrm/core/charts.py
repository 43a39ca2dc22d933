"""Small server-drawn charts: a sparkline's SVG points (no script; the CSP allows none inline)."""

from collections.abc import Sequence

SPARK_WIDTH, SPARK_HEIGHT = 100, 24


def sparkline_points(
    values: Sequence[int], *, width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT
) -> str:
    """'0.0,22.0 50.0,2.0 ...' for a <polyline> in a `0 0 width height` viewBox, lowest value
    at the bottom, 2 units of margin; '' for fewer than two values (a lone point is no trend)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    spread = (high - low) or 1
    step = width / (len(values) - 1)
    return " ".join(
        f"{index * step:.1f},{height - 2 - (value - low) / spread * (height - 4):.1f}"
        for index, value in enumerate(values)
    )
