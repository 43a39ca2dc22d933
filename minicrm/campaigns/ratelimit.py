"""The global rate limit of each channel (messages per second, for all workers together).

A channel's clock is one database row (ChannelRate): a worker about to send n messages reserves
the next n / rate seconds of the channel under the row's lock, then sleeps until its window
starts. The reservations of all processes line up one after the other on that row, so the
limit holds across any number of workers on SQLite, PostgreSQL or MariaDB without Redis.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from minicrm.core.db_retry import atomic_with_retry

from .models import ChannelRate


def channel_rate(channel: str) -> float:
    """Messages per second allowed on `channel`; 0 means unlimited."""
    return max(0.0, float(settings.MINICRM_CHANNEL_RATES.get(channel, 0) or 0))


def piece_size(channel: str, batch: int) -> int:
    """How many messages to send per reservation: at most one second's worth, so a slow channel
    (email at 20/s) sends steadily rather than a burst of a whole batch then a long pause."""
    rate = channel_rate(channel)
    if not rate:
        return max(1, batch)
    return max(1, min(batch, int(rate)))


def _reserve(channel: str, messages: int, rate: float) -> float:
    """Take the channel's next window for `messages`; returns when it starts (epoch seconds)."""

    def reserve() -> float:
        clock = ChannelRate.objects.select_for_update().filter(channel=channel).first()
        if clock is None:
            # The first use of this channel (a concurrent first use retries and finds the row).
            clock = ChannelRate.objects.create(channel=channel)
        now = timezone.now()
        start = max(now, clock.next_free_at or now)
        clock.next_free_at = start + timedelta(seconds=messages / rate)
        clock.save(update_fields=["next_free_at"])
        return start.timestamp()

    return atomic_with_retry(reserve, retry_integrity_error=True)


def rate_wait(channel: str, messages: int) -> float:
    """Wait until `messages` more may go out on `channel`; returns the seconds waited."""
    rate = channel_rate(channel)
    if not rate or messages <= 0:
        return 0.0
    wait = _reserve(channel, messages, rate) - time.time()
    if wait > 0:
        time.sleep(wait)
        return wait
    return 0.0
