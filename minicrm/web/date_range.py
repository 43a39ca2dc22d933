"""The dashboard's date range: last 30/90/365 days or a custom span of whole local days."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone

PRESETS = (30, 90, 365)
DEFAULT_PRESET = 30
# A custom range longer than ten years is a mistake, not a question; it would also make the
# charts' buckets unreadable.
MAX_CUSTOM_DAYS = 3650


@dataclass(frozen=True)
class DateRange:
    """Whole local days from `start` to `end`, both included."""

    start: date
    end: date
    preset: int | None  # 30/90/365, or None for a custom range

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def key(self) -> str:
        return f"{self.start.isoformat()}_{self.end.isoformat()}"

    def bounds(self) -> tuple[datetime, datetime]:
        """[first moment, moment after the last day) in the configured time zone."""
        return day_start(self.start), day_start(self.end + timedelta(days=1))

    def previous(self) -> "DateRange":
        """The same number of days just before, for the change on each figure."""
        end = self.start - timedelta(days=1)
        return DateRange(start=end - timedelta(days=self.days - 1), end=end, preset=self.preset)


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day))


def date_range_preset(*, days: int, today: date) -> DateRange:
    return DateRange(start=today - timedelta(days=days - 1), end=today, preset=days)


def date_range_parse(
    *, preset: str | None, start: str | None, end: str | None, today: date
) -> tuple[DateRange, str]:
    """The range a query string asks for, and a message when it had to fall back to the default.

    `preset` is "30", "90", "365" or "custom" (then `start` and `end` are ISO dates, the end no
    later than today and at most MAX_CUSTOM_DAYS after the start).
    """
    if preset == "custom":
        try:
            first, last = date.fromisoformat(start or ""), date.fromisoformat(end or "")
        except ValueError:
            return date_range_preset(days=DEFAULT_PRESET, today=today), "Pick both dates."
        if first > last:
            first, last = last, first
        if last > today:
            last = today
        if first > today:
            first = today
        if (last - first).days + 1 > MAX_CUSTOM_DAYS:
            message = f"A range holds at most {MAX_CUSTOM_DAYS:,} days."
            return date_range_preset(days=DEFAULT_PRESET, today=today), message
        return DateRange(start=first, end=last, preset=None), ""
    if preset and preset.isdigit() and int(preset) in PRESETS:
        return date_range_preset(days=int(preset), today=today), ""
    return date_range_preset(days=DEFAULT_PRESET, today=today), ""
