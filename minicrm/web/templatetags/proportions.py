"""Bars without inline styles: a number becomes a class from proportions.css (`pct-42`).

The Content-Security-Policy allows no `style="…"` attributes, so a bar's width or share is one
of 101 classes, whole percents from 0 to 100.
"""

from django import template

register = template.Library()


def _whole_percent(value: float) -> int:
    return max(0, min(100, round(value)))


@register.filter
def percent_class(value: object) -> str:
    """`pct-N` for a percentage (a number or numeric text), clamped to 0..100."""
    try:
        number = float(str(value))
    except ValueError:
        return "pct-0"
    return f"pct-{_whole_percent(number)}"


@register.filter
def share_class(part: object, total: object) -> str:
    """`grow-N`, N the part's share of the total in whole percents; a non-zero part gets 1 or more,
    so a small but real share still shows."""
    try:
        part_number, total_number = float(str(part)), float(str(total))
    except ValueError:
        return "grow-0"
    if part_number <= 0 or total_number <= 0:
        return "grow-0"
    return f"grow-{max(1, _whole_percent(100 * part_number / total_number))}"
