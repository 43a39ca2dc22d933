from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from minicrm.accounts.models import Role, User
from minicrm.accounts.services import api_token_create
from minicrm.customers.models import Customer
from minicrm.imports.models import Import
from tests.factories import UserFactory

from .conftest import csv_file

pytestmark = pytest.mark.django_db

GOOD = "external_id,email\nC-1,a@example.com\nC-2,not-an-email\n"


def _client(user: User) -> Client:
    _token, raw = api_token_create(user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def _upload(client: Client, content: str | bytes = GOOD, kind: str = "customers") -> Any:
    return client.post("/api/v1/imports", {"kind": kind, "file": csv_file(content, "c.csv")})


def test_a_marketer_uploads_and_gets_202_with_the_import(
    api_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _upload(api_client)

    assert response.status_code == 202
    body = response.json()
    assert {
        key: body[key] for key in ("kind", "status", "original_filename", "processed_rows")
    } == {
        "kind": "customers",
        "status": "queued",
        "original_filename": "c.csv",
        "processed_rows": 0,
    }
    assert body["created_by"].startswith("person")
    assert len(callbacks) == 1  # the processing task, queued once the upload is committed


def test_progress_and_row_errors_are_served(
    api_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        import_id = _upload(api_client).json()["id"]

    response = api_client.get(f"/api/v1/imports/{import_id}")

    assert response.status_code == 200
    body = response.json()
    assert {
        key: body[key]
        for key in ("status", "total_rows", "processed_rows", "percent", "created", "failed_rows")
    } == {
        "status": "succeeded",
        "total_rows": 2,
        "processed_rows": 2,
        "percent": 100,
        "created": 1,
        "failed_rows": 1,
    }
    assert body["errors"] == [
        {
            "row": 3,
            "field": "email",
            "column": "email",
            "value": "not-an-email",
            "message": "'not-an-email' is not a valid email address.",
        }
    ]


def test_the_error_report_is_a_csv(
    api_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    content = 'external_id,email\nC-1,nope\nC-2,a@example.com\nC-3,"x,y"\n'
    with django_capture_on_commit_callbacks(execute=True):
        import_id = _upload(api_client, content).json()["id"]

    response = api_client.get(f"/api/v1/imports/{import_id}/errors.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert (
        response["Content-Disposition"] == f'attachment; filename="import-{import_id}-errors.csv"'
    )
    assert response.content.decode() == (
        "row,column,value,message\r\n"
        "2,email,nope,'nope' is not a valid email address.\r\n"
        '4,email,"x,y","\'x,y\' is not a valid email address."\r\n'
    )


def test_the_list_is_paginated_newest_first(api_client: Client) -> None:
    for _ in range(3):
        _upload(api_client)

    response = api_client.get("/api/v1/imports?page_size=2")

    body = response.json()
    assert body["count"] == 3
    ids = list(Import.objects.order_by("-id").values_list("id", flat=True))
    assert [item["id"] for item in body["items"]] == ids[:2]


def test_a_missing_column_is_a_400_naming_it(api_client: Client) -> None:
    response = _upload(api_client, "email\na@example.com\n")

    assert response.status_code == 400
    assert response.json() == {
        "detail": 'Missing required column: "external_id". The header row has: "email".',
        "field": "file",
    }
    assert not Import.objects.exists()


def test_a_file_over_the_size_limit_is_a_400_naming_it(api_client: Client, settings: Any) -> None:
    settings.MINICRM_MAX_IMPORT_BYTES = 100

    content = "external_id,email\n" + "C-1,a@example.com\n" * 10

    response = _upload(api_client, content)

    assert response.status_code == 400
    assert response.json()["field"] == "file"
    assert response.json()["detail"].startswith(
        f"The file is {len(content)} bytes; an import takes at most 100 bytes."
    )
    assert not Import.objects.exists()


def test_a_bad_kind_is_a_400(api_client: Client) -> None:
    response = _upload(api_client, kind="products")

    assert response.status_code == 400
    assert response.json()["field"] == "kind"


def test_a_file_not_in_utf8_is_a_400(api_client: Client) -> None:
    response = _upload(api_client, "external_id,first_name\nC-1,Zoë\n".encode("cp1252"))

    assert response.status_code == 400
    assert response.json()["detail"].startswith("The file is not UTF-8 encoded")


def test_an_empty_file_is_a_400(api_client: Client) -> None:
    response = _upload(api_client, b"")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("The file is empty")


def test_without_a_file_the_answer_is_422_naming_it(api_client: Client) -> None:
    response = api_client.post("/api/v1/imports", {"kind": "customers"})

    assert response.status_code == 422
    assert "file" in response.json()["message"]


def test_a_viewer_can_read_but_not_upload() -> None:
    viewer = _client(UserFactory(role=Role.VIEWER))
    existing = Import.objects.create(
        kind="customers", file="imports/x.csv", original_filename="x.csv"
    )

    upload = _upload(viewer)

    assert upload.status_code == 403
    assert upload.json() == {"detail": "This needs the marketer role."}
    assert Import.objects.count() == 1
    assert not Customer.objects.exists()
    assert viewer.get("/api/v1/imports").json()["count"] == 1
    assert viewer.get(f"/api/v1/imports/{existing.pk}").status_code == 200
    assert viewer.get(f"/api/v1/imports/{existing.pk}/errors.csv").status_code == 200


def test_anonymous_calls_are_401(client: Client) -> None:
    assert client.get("/api/v1/imports").status_code == 401
    assert _upload(client).status_code == 401


def test_an_unknown_import_is_404(api_client: Client) -> None:
    response = api_client.get("/api/v1/imports/999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "Import 999999 does not exist."}


def test_session_uploads_need_the_csrf_token(marketer: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)

    response = _upload(client)

    assert response.status_code == 403
    assert not Import.objects.exists()
