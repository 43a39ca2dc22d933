"""Refuse request bodies over their limit with 413 before anything reads them.

JSON and form bodies are read into memory, so they stop at MAX_REQUEST_BODY_BYTES. Multipart
uploads (CSV imports) stream their files to disk and stop at MINICRM_MAX_IMPORT_BYTES; Django still
bounds their in-memory form fields by DATA_UPLOAD_MAX_MEMORY_SIZE.
"""

import os
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .limits import MAX_REQUEST_BODY_BYTES

# Room for a multipart upload's boundaries and its small form fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


def body_limit(request: HttpRequest) -> int:
    if request.content_type == "multipart/form-data":
        return int(settings.MINICRM_MAX_IMPORT_BYTES) + MULTIPART_OVERHEAD_BYTES
    return MAX_REQUEST_BODY_BYTES


def body_too_large_response(limit: int) -> JsonResponse:
    return JsonResponse(
        {"detail": f"The request body is larger than {limit:,} bytes; send less per request."},
        status=413,
    )


def declared_body_length(request: HttpRequest) -> int | None:
    """The body's size: its Content-Length, or the size of an already buffered body without one
    (a chunked body under ASGI is spooled to a file first); None when it cannot be known."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        pass
    stream = getattr(request, "_stream", None)
    if stream is not None and getattr(stream, "seekable", lambda: False)():
        position = stream.tell()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(position)
        return int(size)
    # Under WSGI a body without Content-Length is read as empty by Django: nothing to bound.
    return None


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request)
        length = declared_body_length(request)
        if length is not None and length > limit:
            return body_too_large_response(limit)
        return self.get_response(request)
