from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from minicrm.accounts.models import Role
from minicrm.customers.models import Customer
from minicrm.imports.models import Import
from tests.factories import UserFactory

from .conftest import csv_file

pytestmark = pytest.mark.django_db

GOOD = "external_id,email\nC-1,a@example.com\nC-2,nope\n"


def _import(**fields: Any) -> Import:
    return Import.objects.create(
        kind="customers", file="imports/x.csv", original_filename="x.csv", **fields
    )


def test_the_page_shows_the_drop_zone_history_and_columns(marketer_client: Client) -> None:
    _import(status="succeeded", total_rows=10, processed_rows=10, created=9, error_count=1)

    response = marketer_client.get(reverse("imports:list"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "data-dropzone" in page
    assert 'name="kind"' in page
    assert 'href="#expected-columns"' in page
    assert "customer_external_id" in page
    assert "Done with errors" in page
    assert "10 of 10 rows" in page
    assert reverse("api:import_errors_csv", args=[Import.objects.get().pk]) in page
    # Nothing is running, so the page does not poll.
    assert 'hx-trigger="every 1s"' not in page


def test_the_page_polls_only_while_an_import_can_move(marketer_client: Client) -> None:
    running = _import(status="running", total_rows=100, processed_rows=40)

    page = marketer_client.get(reverse("imports:list")).content.decode()
    fragment = marketer_client.get(reverse("imports:history")).content.decode()

    assert 'hx-trigger="every 1s"' in page
    assert fragment.startswith('<div id="import-history" hx-get="/imports/history/"')
    assert "40 of 100 rows" in fragment
    assert 'aria-valuenow="40"' in fragment

    Import.objects.filter(pk=running.pk).update(status="succeeded", processed_rows=100)
    fragment = marketer_client.get(reverse("imports:history")).content.decode()
    assert 'hx-trigger="every 1s"' not in fragment
    assert "100 of 100 rows" in fragment


def test_an_import_that_lost_its_worker_shows_as_resuming_and_keeps_polling(
    marketer_client: Client,
) -> None:
    lost = _import(
        status="running",
        total_rows=100,
        processed_rows=40,
        lease_token="a" * 32,
        lease_expires_at=timezone.now() - timedelta(seconds=5),
    )
    busy = _import(
        status="running",
        total_rows=100,
        processed_rows=60,
        lease_token="b" * 32,
        lease_expires_at=timezone.now() + timedelta(seconds=20),
    )

    page = marketer_client.get(reverse("imports:list")).content.decode()

    # The recovery sweep resumes it within a minute: nobody has to press anything, but the
    # button stays for a setup whose workers do not sweep.
    assert page.count(">Resuming</span>") == 1
    assert page.count(">Running</span>") == 1
    assert reverse("imports:resume", args=[lost.pk]) in page
    assert reverse("imports:resume", args=[busy.pk]) not in page
    assert 'hx-trigger="every 1s"' in page
    # Reading the page changes nothing.
    assert Import.objects.get(pk=lost.pk).lease_token == "a" * 32


def _mapping_post(client: Client, import_id: int, **fields: str) -> Any:
    return client.post(reverse("imports:mapping", args=[import_id]), fields)


def test_uploading_a_file_shows_its_mapping_then_importing_queues_it_and_says_so(
    marketer_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    response = marketer_client.post(
        reverse("imports:upload"), {"kind": "customers", "file": csv_file(GOOD, "shop.csv")}
    )
    uploaded = Import.objects.get()
    assert (uploaded.status, response.status_code) == ("mapping", 302)
    assert response["Location"] == reverse("imports:mapping", args=[uploaded.pk])
    mapping_page = marketer_client.get(response["Location"]).content.decode()
    assert '<option value="external_id" selected>external_id</option>' in mapping_page

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = _mapping_post(
            marketer_client,
            uploaded.pk,
            **{"kind": "customers", "key": "external_id", "column-external_id": "external_id"},
            **{"column-email": "email"},
        )

    assert confirmed["Location"] == reverse("imports:list")
    page = marketer_client.get(confirmed["Location"]).content.decode()
    assert "shop.csv is queued for import." in page
    imported = Import.objects.get()
    assert (imported.status, imported.created, imported.failed_rows) == ("succeeded", 1, 1)
    assert Customer.objects.count() == 1


def test_a_mapping_without_a_required_column_is_shown_on_the_mapping_page(
    marketer_client: Client,
) -> None:
    marketer_client.post(
        reverse("imports:upload"), {"kind": "orders", "file": csv_file(GOOD, "orders.csv")}
    )
    uploaded = Import.objects.get()

    response = _mapping_post(
        marketer_client,
        uploaded.pk,
        **{"kind": "orders", "key": "external_id", "column-external_id": "external_id"},
    )

    assert response.status_code == 400
    assert (
        "Choose a column for customer_external_id, amount, ordered_at (needed for orders keyed "
        "by external_id)." in response.content.decode()
    )
    uploaded.refresh_from_db()
    assert (uploaded.status, uploaded.mapping) == ("mapping", {})


def test_uploading_without_a_file_asks_for_one(marketer_client: Client) -> None:
    response = marketer_client.post(reverse("imports:upload"), {"kind": "customers"})

    assert response.status_code == 400
    assert "Choose a CSV file to import." in response.content.decode()


def test_a_viewer_sees_the_history_but_cannot_upload(client: Client) -> None:
    client.force_login(UserFactory(role=Role.VIEWER))
    _import(status="succeeded")

    page = client.get(reverse("imports:list")).content.decode()
    response = client.post(reverse("imports:upload"), {"kind": "customers", "file": csv_file(GOOD)})

    assert "data-dropzone" not in page
    assert "x.csv" in page
    assert response.status_code == 403
    assert Import.objects.count() == 1


def test_resume_requeues_an_interrupted_import(
    marketer_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    marketer_client.post(reverse("imports:upload"), {"kind": "customers", "file": csv_file(GOOD)})
    uploaded = Import.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        _mapping_post(
            marketer_client,
            uploaded.pk,
            **{"kind": "customers", "key": "external_id", "column-external_id": "external_id"},
        )
    interrupted = Import.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(reverse("imports:resume", args=[interrupted.pk]))

    assert response.status_code == 302
    interrupted.refresh_from_db()
    assert interrupted.status == Import.Status.SUCCEEDED
    again = marketer_client.post(reverse("imports:resume", args=[interrupted.pk]), follow=True)
    assert f"Import {interrupted.pk} has finished (succeeded)." in again.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    response = client.get(reverse("imports:list"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
