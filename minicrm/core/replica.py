"""Read-heavy paths read the replica: `replica_reads()` marks them, and
`ReplicaPinMiddleware` keeps a client that has just written on the primary ("read your own
writes"). Routing itself is minicrm.core.db_router's; nothing here acts without a replica.
"""

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse

from .db_router import (
    REPLICA_DB_ALIAS,
    ReadsUnit,
    current_unit,
    in_replica_block,
    read_alias,
    reads_unit,
    replica_block,
    replica_configured,
)
from .statement_timeout import active_timeout_seconds, statement_timeout

# Holds the moment (Unix seconds) until which the client's reads stay on the primary.
PIN_COOKIE = "minicrm_primary_until"


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads inside may go to the read replica (a context manager, or a decorator).

    For reads that can be a moment behind the latest write: lists, counts, exports, facts. Once
    the request (or, outside a request, this block) writes, its reads return to the primary.
    A statement budget already running (`statement_timeout`) bounds the replica's statements too.
    """
    if not replica_configured():
        yield
        return
    nested = in_replica_block()
    with ExitStack() as stack:
        if current_unit() is None:
            # Outside a request (a worker's task): this block is the unit whose writes count.
            stack.enter_context(reads_unit(ReadsUnit()))
        stack.enter_context(replica_block())
        budget = active_timeout_seconds()
        if budget is not None and not nested and read_alias() == REPLICA_DB_ALIAS:
            stack.enter_context(statement_timeout(budget, using=REPLICA_DB_ALIAS))
        yield


def pin_seconds() -> float:
    return float(settings.MINICRM_REPLICA_PIN_SECONDS)


def client_pinned(request: HttpRequest, *, now: float) -> bool:
    """Whether this client wrote within the last MINICRM_REPLICA_PIN_SECONDS (its cookie says)."""
    try:
        return float(request.COOKIES.get(PIN_COOKIE, "0")) > now
    except ValueError:
        return False  # a mangled cookie only ever costs reads on the replica, never correctness


class ReplicaPinMiddleware:
    """One reads unit per request; a request that wrote pins its client to the primary for
    MINICRM_REPLICA_PIN_SECONDS (longer than the replica's usual lag) with a cookie."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not replica_configured():
            return self.get_response(request)
        now = time.time()
        unit = ReadsUnit(pinned=client_pinned(request, now=now))
        with reads_unit(unit):
            response = self.get_response(request)
        if isinstance(response, StreamingHttpResponse) and not response.is_async:
            # A streamed body (an export) is read after this returns: it keeps the request's unit.
            content = response.streaming_content
            if isinstance(content, Iterator):
                response.streaming_content = _within(unit, content)
        seconds = pin_seconds()
        if unit.wrote and seconds > 0:
            response.set_cookie(
                PIN_COOKIE,
                # Rounded up to the millisecond: the pin never ends before it promised.
                f"{math.ceil((now + seconds) * 1000) / 1000:.3f}",
                max_age=timedelta(seconds=seconds),
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response


def _within(unit: ReadsUnit, chunks: Iterable[bytes]) -> Iterator[bytes]:
    iterator = iter(chunks)
    while True:
        with reads_unit(unit):
            chunk = next(iterator, None)
        if chunk is None:
            return
        yield chunk
