"""One id per request, in the `X-Request-ID` answer header and on every log record written while
the request runs, so a request's access line and its application records can be found together.

A proxy's or load balancer's own `X-Request-ID` is kept when it looks like an id (so one id follows
the request across machines); anything else is replaced, since the value ends up in logs.
"""

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponseBase

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and a few separators, bounded: enough for UUIDs and the ids proxies make,
# nothing that could forge a log line.
_INCOMING_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")

_current: ContextVar[str | None] = ContextVar("minicrm_request_id", default=None)


def request_id_current() -> str | None:
    """The id of the request this thread (or task context) is answering, if any."""
    return _current.get()


def request_id_for(request: HttpRequest) -> str:
    """The proxy's id when it is a plausible one, else a fresh one."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if _INCOMING_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request's id for the time of the request and returns it in the answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = request_id_for(request)
        # Also on the request: Django logs a 4xx/5xx answer (django.request) after the middleware
        # has returned, with the request on the record.
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to records written inside a request (a filter on the handler, so records
    of every logger get it); records outside a request are left without one."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _current.get() or getattr(getattr(record, "request", None), "request_id", None)
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True
