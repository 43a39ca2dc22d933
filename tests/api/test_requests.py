"""Requests every route refuses the same way: bodies over their limit (413), text no database can
store, out-of-range ids, pages and dates (422 naming the parameter), unknown URLs (JSON 404)."""

import json
from collections.abc import Iterator
from tempfile import SpooledTemporaryFile
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import reverse

from minicrm.accounts.models import Role
from minicrm.accounts.services import api_token_create
from minicrm.campaigns.services import campaign_create
from minicrm.core import request_limits
from minicrm.core.limits import MAX_ID, MAX_PAGE_NUMBER, MAX_REQUEST_BODY_BYTES
from minicrm.core.request_limits import RequestBodyLimitMiddleware
from minicrm.customers.models import Customer
from minicrm.imports.models import Import
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import AdminFactory, UserFactory
from tests.imports.conftest import csv_file

pytestmark = pytest.mark.django_db

RULES = {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "Pune"}]}


@pytest.fixture
def admin_api() -> Client:
    _token, raw = api_token_create(user=AdminFactory(), name="tests")
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def segment() -> Segment:
    return segment_create(
        name="Pune", description="", rules=parse_rules(RULES), created_by=AdminFactory()
    )


@pytest.fixture
def media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def post_json(client: Client, path: str, body: Any, method: str = "post") -> Any:
    send = getattr(client, method)
    return send(f"/api/v1{path}", data=json.dumps(body), content_type="application/json")


def openapi(client: Client) -> dict[str, Any]:
    return client.get("/api/v1/openapi.json").json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


# --- 413 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("debug", [False, True])
def test_a_json_body_over_the_limit_is_a_413_before_parsing(
    admin_api: Client, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    row = b'{"external_id": "C-1"},'
    rows = row * ((MAX_REQUEST_BODY_BYTES - 20) // len(row) + 2)
    body = b'{"rows": [' + rows[:-1] + b"]}"
    assert len(body) > MAX_REQUEST_BODY_BYTES

    response = admin_api.post("/api/v1/customers/bulk", data=body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "detail": f"The request body is larger than {MAX_REQUEST_BODY_BYTES:,} bytes; "
        "send less per request."
    }
    assert Customer.objects.count() == 0


def test_a_page_form_with_a_declared_length_over_the_limit_is_a_413(
    marketer_client: Client,
) -> None:
    response = marketer_client.post(
        reverse("imports:upload"),
        data="kind=customers",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(MAX_REQUEST_BODY_BYTES + 1),
    )

    assert response.status_code == 413
    assert response.json()["detail"].startswith("The request body is larger than")
    assert Import.objects.count() == 0


def test_csv_uploads_keep_their_own_larger_limit(
    admin_api: Client,
    marketer_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    media_root: None,
) -> None:
    # A 3,000-byte JSON limit stands in for the real 50 MB: the CSV is bigger, and still passes.
    monkeypatch.setattr(request_limits, "MAX_REQUEST_BODY_BYTES", 3000)
    csv = "external_id,email\n" + "".join(f"C-{n},c{n}@example.com\n" for n in range(300))
    assert len(csv) > 3000

    api = admin_api.post("/api/v1/imports", {"kind": "customers", "file": csv_file(csv)})
    page = marketer_client.post(
        reverse("imports:upload"), {"kind": "customers", "file": csv_file(csv)}
    )
    too_big = post_json(admin_api, "/customers/bulk", {"rows": [{"external_id": "x" * 3000}]})

    assert (api.status_code, page.status_code, too_big.status_code) == (202, 302, 413)
    assert Import.objects.count() == 2


def test_a_csv_upload_over_the_import_limit_is_a_413(
    admin_api: Client, settings: Any, media_root: None
) -> None:
    settings.MINICRM_MAX_IMPORT_BYTES = 1000
    csv = "external_id\n" + "C-1\n" * ((request_limits.MULTIPART_OVERHEAD_BYTES + 2000) // 4)

    response = admin_api.post("/api/v1/imports", {"kind": "customers", "file": csv_file(csv)})

    assert response.status_code == 413
    assert Import.objects.count() == 0


def test_a_spooled_body_without_content_length_is_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under ASGI a chunked body (no Content-Length) is spooled to a file before the view runs.
    monkeypatch.setattr(request_limits, "MAX_REQUEST_BODY_BYTES", 100)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/customers/bulk",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }

    def never(request: HttpRequest) -> HttpResponse:
        raise AssertionError("the view must not run")

    with SpooledTemporaryFile() as body:
        body.write(b"[" + b"1," * 100 + b"1]")
        body.seek(0)
        response = RequestBodyLimitMiddleware(never)(ASGIRequest(scope, body))

    assert response.status_code == 413


def test_a_body_django_finds_too_large_while_reading_is_a_413(
    admin_api: Client, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    response = post_json(admin_api, "/customers/bulk", {"rows": [{"external_id": "x" * 200}]})

    assert response.status_code == 413
    assert Customer.objects.count() == 0


# --- Text databases refuse ------------------------------------------------------------------------
NUL = "a\x00b"
SURROGATE = "a\ud800b"


def fill(value: Any, bad: str) -> Any:
    """The body with each "{bad}" (a key or a value) replaced by the bad text."""
    if isinstance(value, dict):
        return {fill(key, bad): fill(item, bad) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, bad) for item in value]
    return bad if value == "{bad}" else value


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/segments", {"name": "{bad}", "rules": RULES}, ["body", "name"]),
        (
            "/segments",
            {"name": "ok", "rules": {"match": "all", "conditions": [{"value": "{bad}"}]}},
            ["body", "rules", "conditions", 0, "value"],
        ),
        ("/segments/preview", {"rules": {"{bad}": 1}}, ["body", "rules", "a\\x00b"]),
        ("/segments/parse", {"text": "{bad}"}, ["body", "text"]),
    ],
)
def test_text_no_database_stores_is_a_422_naming_its_place_in_the_body(
    admin_api: Client, segment: Segment, bad: str, path: str, body: Any, loc: list[Any]
) -> None:
    payload = fill(body, bad)
    if bad == SURROGATE and "a\\x00b" in loc:
        loc = [*loc[:-1], "a\\ud800b"]

    response = post_json(admin_api, path, payload)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [loc]
    assert list(Segment.objects.values_list("name", flat=True)) == ["Pune"]


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_text_no_database_stores_is_a_422_on_a_patch(
    admin_api: Client, segment: Segment, bad: str
) -> None:
    response = post_json(admin_api, f"/segments/{segment.pk}", {"description": bad}, method="patch")

    assert response.status_code == 422
    assert response.json()["message"] == "Invalid input: description"
    segment.refresh_from_db()
    assert segment.description == ""


@pytest.mark.parametrize(
    "path",
    [
        "/customers?city=a%00b",
        "/customers?search=%00",
        "/orders?customer_external_id=C%00",
        "/segments?page=1&x=%00",
    ],
)
def test_a_nul_in_a_query_parameter_is_a_422_naming_it(admin_api: Client, path: str) -> None:
    name = path.split("?")[1].split("&")[-1].split("=")[0]

    response = admin_api.get(f"/api/v1{path}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", name]
    assert response.json()["message"] == f"Invalid input: {name}"


def test_a_nul_in_a_form_field_is_a_422_naming_it(admin_api: Client, media_root: None) -> None:
    response = admin_api.post(
        "/api/v1/imports", {"kind": "customers\x00", "file": csv_file("external_id\nC-1\n")}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["form", "kind"]
    assert Import.objects.count() == 0


def test_bulk_rows_with_bad_text_stay_row_errors(admin_api: Client) -> None:
    rows = [{"external_id": "C-1"}, {"external_id": "C-2", "city": NUL}]

    response = post_json(admin_api, "/customers/bulk", {"rows": rows})

    assert response.status_code == 200
    assert response.json()["errors"] == [
        {"index": 1, "field": "city", "message": "Must not contain the NUL character (\\u0000)."}
    ]
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["C-1"]


# --- Ids, pages and dates -------------------------------------------------------------------------
def test_every_list_refuses_a_page_past_the_deepest_and_serves_the_deepest(
    admin_api: Client, segment: Segment
) -> None:
    document = openapi(admin_api)
    campaign = campaign_create(
        created_by=None, name="Spring", segment_id=segment.pk, template="Hi {{ first_name }}"
    )
    lists = [
        path.replace("{segment_id}", str(segment.pk)).replace("{campaign_id}", str(campaign.pk))
        for method, path, operation in operations(document)
        if method == "GET"
        and any(parameter["name"] == "page" for parameter in operation.get("parameters", []))
    ]
    assert len(lists) == 11

    for path in lists:
        too_deep = admin_api.get(f"{path}?page=9223372036854775807")
        deepest = admin_api.get(f"{path}?page={MAX_PAGE_NUMBER}")

        assert too_deep.status_code == 422, path
        assert too_deep.json()["detail"][0]["loc"] == ["query", "page"]
        assert deepest.status_code == 200, path
        assert deepest.json()["items"] == []


def test_every_id_in_a_path_refuses_numbers_past_64_bits(admin_api: Client) -> None:
    document = openapi(admin_api)
    checked = 0
    for method, path, operation in operations(document):
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        if not names:
            continue
        too_big = path
        largest = path
        for name in names:
            too_big = too_big.replace(f"{{{name}}}", str(MAX_ID + 1))
            largest = largest.replace(f"{{{name}}}", str(MAX_ID))
        body = {"objective": "win back"} if path.endswith("suggest-messages") else {}

        refused = admin_api.generic(method, too_big, json.dumps(body), "application/json")
        missing = admin_api.generic(method, largest, json.dumps(body), "application/json")

        assert refused.status_code == 422, (method, path)
        assert refused.json()["detail"][0]["loc"] == ["path", names[0]]
        assert missing.status_code == 404, (method, path)
        checked += 1
    assert checked == 20


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("ordered_to=9999-12-31", "ordered_to"),
        ("ordered_from=0001-01-01", "ordered_from"),
        ("customer_id=9223372036854775808", "customer_id"),
        ("customer_id=0", "customer_id"),
    ],
)
def test_order_filters_out_of_range_are_a_422_naming_them(
    admin_api: Client, query: str, name: str
) -> None:
    response = admin_api.get(f"/api/v1/orders?{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", name]


@pytest.mark.parametrize("query", ["spend_min=1e20", "spend_max=0.001"])
def test_spend_filters_outside_the_column_are_a_422(admin_api: Client, query: str) -> None:
    response = admin_api.get(f"/api/v1/customers?{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", query.split("=")[0]]


def test_the_widest_date_filters_are_served(admin_api: Client) -> None:
    response = admin_api.get(
        f"/api/v1/orders?ordered_from=1900-01-01&ordered_to=2999-12-31&customer_id={MAX_ID}"
    )

    assert response.status_code == 200
    assert response.json() == {"items": [], "count": 0}


def test_an_unknown_api_url_is_a_json_404(admin_api: Client, client: Client) -> None:
    for response in (
        admin_api.get("/api/v1/segments/abc"),
        admin_api.post("/api/v1/no-such-thing"),
        client.get("/api/v1/nothing/here"),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "No such API URL."}


def test_a_viewer_token_is_refused_writes_with_403(client: Client) -> None:
    _token, raw = api_token_create(user=UserFactory(role=Role.VIEWER), name="viewer")
    viewer = Client(headers={"Authorization": f"Bearer {raw}"})

    response = post_json(viewer, "/segments", {"name": "x", "rules": RULES})

    assert response.status_code == 403
    assert Segment.objects.count() == 0


def test_the_customer_list_page_serves_a_page_past_the_deepest(viewer_client: Client) -> None:
    # The HTML list shares the bound: the offset of page 2^63-1 overflowed the database.
    response = viewer_client.get("/customers/?page=9223372036854775807")

    assert response.status_code == 200


@pytest.mark.parametrize("value", ["0", "1700000000", "2025-1-5", "2025-01-05T00:00"])
def test_a_date_filter_takes_only_a_day_written_as_yyyy_mm_dd(
    api_client: Client, value: str
) -> None:
    response = api_client.get("/api/v1/orders", {"ordered_from": value})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "ordered_from"]
