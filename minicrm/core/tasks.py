"""One way to enqueue a task and one way to retry it: every service and task goes through here.

`enqueue_on_commit` queues a task once the current transaction commits (at once outside one), so
a worker never looks for a row that was rolled back or is not yet visible. A task that should
wait (`delay` or `run_after`) is deferred only when the backend can defer; the immediate
backend (tests, MINICRM_TASKS_BACKEND=immediate) cannot, and asking it to raises
InvalidTaskError. There the task runs now instead (a retry then comes at once, still bounded by
its policy's attempt limit), or, with `defer_only`, not at all: for work that only makes sense
at its time (tomorrow's size count, the summary at the end of the attribution window).

`RetryPolicy` names a task family's settings (attempts in all, base seconds); `retry_later` is
what a task calls after a transient failure: it queues attempt + 1 after base x 2^(attempt-1)
seconds (capped), or answers False when the attempts are spent so the task can give up.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks.base import Task

logger = logging.getLogger(__name__)

# However many attempts a family allows, one never waits longer than this for the next.
MAX_RETRY_DELAY = timedelta(hours=1)

AnyTask: TypeAlias = Task[..., Any]


def enqueue_on_commit(
    task: AnyTask,
    *args: Any,
    delay: timedelta | None = None,
    run_after: datetime | None = None,
    defer_only: bool = False,
) -> None:
    """Queue `task(*args)` after the current transaction commits (now if there is none).

    `delay` counts from the commit; `run_after` is a fixed time. Where the backend cannot
    defer, the task is queued now, or dropped (with a warning) when `defer_only`.
    """
    if delay is not None and run_after is not None:
        raise ValueError("Give a delay or a time to run after, not both.")
    if defer_only and delay is None and run_after is None:
        raise ValueError("defer_only needs a delay or a time to run after.")
    transaction.on_commit(lambda: _enqueue(task, args, delay, run_after, defer_only))


def _enqueue(
    task: AnyTask,
    args: tuple[Any, ...],
    delay: timedelta | None,
    run_after: datetime | None,
    defer_only: bool,
) -> None:
    when = timezone.now() + delay if delay is not None else run_after
    if when is None:
        task.enqueue(*args)
        return
    if task.get_backend().supports_defer:
        task.using(run_after=when).enqueue(*args)
        return
    if defer_only:
        logger.warning(
            "%s%s was not queued: the task backend cannot run tasks later (due %s).",
            task.name,
            list(args),
            when.isoformat(),
        )
        return
    logger.info(
        "%s%s runs now: the task backend cannot run tasks later (due %s).",
        task.name,
        list(args),
        when.isoformat(),
    )
    task.enqueue(*args)


@dataclass(frozen=True)
class RetryPolicy:
    """A task family's retries: the names of its settings, read when used (never at import)."""

    max_attempts_setting: str
    base_seconds_setting: str

    def max_attempts(self) -> int:
        """Attempts in all, the first one included (at least one)."""
        return max(1, int(getattr(settings, self.max_attempts_setting)))

    def may_retry(self, attempt: int) -> bool:
        """Whether attempt `attempt` may be followed by another."""
        return attempt < self.max_attempts()

    def delay(self, attempt: int) -> timedelta:
        """The wait after attempt `attempt` failed: base, 2 x base, 4 x base, ..., capped."""
        base = float(getattr(settings, self.base_seconds_setting))
        seconds = base * 2 ** max(0, attempt - 1)
        return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


def retry_later(task: AnyTask, *args: Any, attempt: int, policy: RetryPolicy) -> bool:
    """Queue `task(*args, attempt + 1)` after the policy's backoff, once the current transaction
    commits; False (nothing queued) when attempt `attempt` was the last one allowed."""
    if not policy.may_retry(attempt):
        return False
    delay = policy.delay(attempt)
    logger.info("%s%s: attempt %s in %s", task.name, list(args), attempt + 1, delay)
    enqueue_on_commit(task, *args, attempt + 1, delay=delay)
    return True


# Imports and rate re-conversions: a locked or dropped database is worth another try.
DATABASE_RETRY = RetryPolicy(
    max_attempts_setting="MINICRM_TASK_DATABASE_MAX_ATTEMPTS",
    base_seconds_setting="MINICRM_TASK_DATABASE_RETRY_BASE_SECONDS",
)
