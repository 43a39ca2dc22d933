"""Log lines: JSON records carry the request's id (also in the X-Request-ID answer header), and
gunicorn's access records become JSON objects with their parts as keys."""

import json
import logging
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from gunicorn.glogging import SafeAtoms

from minicrm.core.json_log import JsonLogFormatter, SecretPathFilter, logging_config
from minicrm.core.request_id import (
    REQUEST_ID_HEADER,
    RequestIdFilter,
    RequestIdMiddleware,
    request_id_current,
)


def _json_formatter() -> JsonLogFormatter:
    spec = dict(logging_config(log_format="json", level="INFO")["formatters"]["json"])
    spec.pop("()")
    return JsonLogFormatter(**spec)


def _record(name: str, message: str, args: Any = None) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 1, message, args, None)


@pytest.mark.django_db
def test_each_answer_carries_a_fresh_request_id(client: Client) -> None:
    first = client.get("/healthz")[REQUEST_ID_HEADER]
    second = client.get("/healthz")[REQUEST_ID_HEADER]

    assert len(first) == 32
    assert first != second


@pytest.mark.django_db
def test_a_proxys_plausible_request_id_is_kept_and_anything_else_replaced(client: Client) -> None:
    kept = client.get("/healthz", headers={REQUEST_ID_HEADER: "lb-7f3a9c21-0001"})
    forged = client.get("/healthz", headers={REQUEST_ID_HEADER: 'x" injected="1'})

    assert kept[REQUEST_ID_HEADER] == "lb-7f3a9c21-0001"
    assert forged[REQUEST_ID_HEADER] != 'x" injected="1'
    assert len(forged[REQUEST_ID_HEADER]) == 32


def test_records_written_during_a_request_carry_its_id(caplog: pytest.LogCaptureFixture) -> None:
    # The filter sits on the handler in LOGGING; here on pytest's capturing handler.
    caplog.handler.addFilter(RequestIdFilter())

    def view(request: HttpRequest) -> HttpResponse:
        logging.getLogger("minicrm.test").warning("inside the request")
        return HttpResponse()

    request = RequestFactory().get("/", headers={REQUEST_ID_HEADER: "probe-0000000042"})
    response = RequestIdMiddleware(view)(request)
    logging.getLogger("minicrm.test").warning("after the request")

    assert response[REQUEST_ID_HEADER] == "probe-0000000042"
    inside, after = (record for record in caplog.records if record.name == "minicrm.test")
    assert inside.request_id == "probe-0000000042"  # type: ignore[attr-defined]
    assert json.loads(_json_formatter().format(inside))["request_id"] == "probe-0000000042"
    assert not hasattr(after, "request_id")
    assert request_id_current() is None


@pytest.mark.django_db
def test_djangos_log_of_an_error_answer_carries_the_id(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Django logs 4xx and 5xx answers once the middleware has returned, with the request.
    caplog.handler.addFilter(RequestIdFilter())

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    (record,) = (record for record in caplog.records if record.name == "django.request")
    assert record.request_id == response[REQUEST_ID_HEADER]  # type: ignore[attr-defined]


def test_an_application_record_is_one_json_object() -> None:
    line = _json_formatter().format(_record("minicrm.imports", "Import %s done", (7,)))

    answer = json.loads(line)
    assert "\n" not in line
    assert (answer["level"], answer["logger"], answer["message"]) == (
        "INFO",
        "minicrm.imports",
        "Import 7 done",
    )
    assert answer["time"].endswith("+00:00")
    assert "request_id" not in answer  # written outside any request


def test_a_gunicorn_access_record_names_its_parts() -> None:
    atoms = SafeAtoms(
        {
            "m": "GET",
            "U": "/customers/",
            "q": "search=ada",
            "s": "200",
            "B": 5120,
            "M": 12,
            "h": "10.0.0.2",
            "a": "Mozilla/5.0",
            "{x-forwarded-for}i": "203.0.113.9",
            "{x-request-id}o": "abc123abc123",
        }
    )
    record = _record("gunicorn.access", "%(m)s %(U)s %(s)s %(B)s %(M)sms", atoms)

    answer = json.loads(_json_formatter().format(record))

    assert answer["message"] == "GET /customers/ 200 5120 12ms"
    assert {key: answer[key] for key in ("method", "path", "status", "bytes", "duration_ms")} == {
        "method": "GET",
        "path": "/customers/",
        "status": 200,
        "bytes": 5120,
        "duration_ms": 12,
    }
    assert answer["request_id"] == "abc123abc123"
    assert answer["forwarded_for"] == "203.0.113.9"
    assert "search=ada" not in json.dumps(answer)  # the query string stays out of the log


@pytest.mark.parametrize(
    "path",
    ["/u/tok.en-secret/", "/invitations/tok.en-secret/", "/sign-in/link/tok.en-secret/"],
)
def test_secret_links_are_redacted_from_access_and_error_lines(path: str) -> None:
    """Unsubscribe, invitation and sign-in links carry their secret in the path: whoever reads
    the logs must not be able to use them (access line, Django's 404 warning, its request)."""
    atoms = SafeAtoms({"m": "GET", "U": path, "s": "404", "B": 0, "M": 1})
    access = _record("gunicorn.access", "%(m)s %(U)s %(s)s %(B)s %(M)sms", atoms)
    warning = _record("django.request", "Not Found: %s", (path,))
    warning.request = RequestFactory().get(path)
    formatter = _json_formatter()
    lines = []
    for record in (access, warning):
        assert SecretPathFilter().filter(record)
        lines.append(formatter.format(record))

    assert not any("secret" in line for line in lines), lines
    prefix = path.removesuffix("tok.en-secret/")
    assert json.loads(lines[0])["path"] == f"{prefix}[redacted]/"
    assert json.loads(lines[1])["request"] == f"GET {prefix}[redacted]/"
    # Other paths are left alone, and the handler applies the filter in both formats.
    assert SecretPathFilter().filter(plain := _record("x", "%s", ("/segments/7/",)))
    assert plain.getMessage() == "/segments/7/"
    for log_format in ("plain", "json"):
        handler = logging_config(log_format=log_format, level="INFO")["handlers"]["console"]
        assert "secret_paths" in handler["filters"]
