"""Exchange rates in (service, command, API) and the re-conversion a change queues: exactly the
orders the rate decides move, and every customer's stats stay equal to a recount."""

import json
import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Max, Min, Q, Sum
from django.test import Client
from django.utils import timezone

from minicrm.accounts.models import AuditEvent, Role
from minicrm.accounts.services import api_token_create
from minicrm.core.recovery import work_recover
from minicrm.customers import reconversion as reconversion_module
from minicrm.customers.currency import amount_at_rate, order_day, rate_for, shop_currency
from minicrm.customers.models import Customer, ExchangeRate, Order, RateReconversion
from minicrm.customers.rates import rates_upsert
from minicrm.customers.reconversion import reconversion_run
from minicrm.customers.services import customers_bulk_upsert, orders_bulk_upsert
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OnCommit = Callable[..., Any]


def rate(day: str, currency: str, value: str) -> dict[str, str]:
    return {"date": day, "currency": currency, "rate": value}


def order(key: str, customer: str, amount: str, currency: str, day: str, **extra: Any) -> dict:
    return {
        "external_id": key,
        "customer_external_id": customer,
        "amount": amount,
        "currency": currency,
        "ordered_at": f"{day}T12:00:00Z",
        **extra,
    }


def recount() -> dict[str, tuple[Decimal, int, datetime | None, datetime | None]]:
    """Every customer's stats computed from scratch from the orders."""
    rows = Customer.objects.annotate(
        spend=Sum("orders__amount", filter=Q(orders__status="completed")),
        count=Count("orders", filter=Q(orders__status="completed")),
        first=Min("orders__ordered_at", filter=Q(orders__status="completed")),
        last=Max("orders__ordered_at", filter=Q(orders__status="completed")),
    ).values_list("external_id", "spend", "count", "first", "last")
    return {
        key: (Decimal(spend or 0).quantize(Decimal("0.01")), count, first, last)
        for key, spend, count, first, last in rows
    }


def stored_stats() -> dict[str, tuple[Decimal, int, datetime | None, datetime | None]]:
    return {
        key: (spend, count, first, last)
        for key, spend, count, first, last in Customer.objects.values_list(
            "external_id", "total_spend", "order_count", "first_order_at", "last_order_at"
        )
    }


def amounts() -> dict[str, Decimal]:
    return dict(Order.objects.values_list("external_id", "amount"))


@pytest.fixture
def shop(django_capture_on_commit_callbacks: OnCommit) -> None:
    rates_upsert(
        rows=[
            rate("2026-03-01", "EUR", "90"),
            rate("2026-03-10", "EUR", "92"),
            rate("2026-03-01", "USD", "83"),
        ]
    )
    customers_bulk_upsert(rows=[{"external_id": key} for key in ("C-1", "C-2", "C-3")])
    result = orders_bulk_upsert(
        rows=[
            order("E-1", "C-1", "10.00", "EUR", "2026-03-01"),  # 900.00
            order("E-2", "C-1", "10.00", "EUR", "2026-03-05"),  # 900.00 (the 1st's rate)
            order("E-3", "C-2", "10.00", "EUR", "2026-03-08"),  # 900.00
            order("E-4", "C-2", "10.00", "EUR", "2026-03-10"),  # 920.00
            order("E-5", "C-3", "10.00", "EUR", "2026-03-12", status="refunded"),  # 920.00
            order("U-1", "C-3", "10.00", "USD", "2026-03-05"),  # 830.00
            order("I-1", "C-3", "100.00", "INR", "2026-03-05"),
        ]
    )
    assert result.errors == []


# --- rates in ---------------------------------------------------------------------------------


def test_rates_are_upserted_by_currency_and_day_and_resending_changes_nothing() -> None:
    rows = [rate("2026-03-01", "eur", "90.5"), rate("2026-03-02", "USD", 83)]

    first = rates_upsert(rows=rows)
    again = rates_upsert(rows=rows)

    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.created, again.updated, again.unchanged, again.errors) == (0, 0, 2, [])
    assert sorted(ExchangeRate.objects.values_list("currency", "day", "rate")) == [
        ("EUR", date(2026, 3, 1), Decimal("90.5")),
        ("USD", date(2026, 3, 2), Decimal("83")),
    ]
    # Audited once: the resend changed nothing.
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RATES_IMPORTED).count() == 1


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (rate("2026-02-30", "EUR", "1"), "date", "Must be a date written YYYY-MM-DD."),
        (rate("2026-03-01", "EURO", "1"), "currency", "'EURO' is not an ISO 4217 currency code."),
        (
            rate("2026-03-01", "INR", "1"),
            "currency",
            "INR is the shop currency: its rate is always 1.",
        ),
        (rate("2026-03-01", "EUR", "0"), "rate", "rate must be more than 0, got '0'."),
        (rate("2026-03-01", "EUR", "-2"), "rate", "rate must be more than 0, got '-2'."),
        (rate("2026-03-01", "EUR", "abc"), "rate", "rate must be a number, got 'abc'."),
        (rate("2026-03-01", "EUR", "1.00000000001"), "rate", None),
        ({"date": "2026-03-01", "currency": "EUR"}, "rate", "This field is required."),
        ({**rate("2026-03-01", "EUR", "1"), "extra": 1}, "extra", "Unknown field."),
    ],
)
def test_a_bad_rate_row_is_an_error_naming_its_field(
    row: dict[str, Any], field: str, message: str | None
) -> None:
    result = rates_upsert(rows=[row, rate("2026-03-01", "USD", "83")])

    assert [(error.index, error.field) for error in result.errors] == [(0, field)]
    if message is not None:
        assert result.errors[0].message == message
    assert list(ExchangeRate.objects.values_list("currency", flat=True)) == ["USD"]


def test_the_same_currency_and_day_twice_in_one_batch_keeps_the_first() -> None:
    result = rates_upsert(rows=[rate("2026-03-01", "EUR", "90"), rate("2026-03-01", "EUR", "91")])

    assert [(error.index, error.field) for error in result.errors] == [(1, "date")]
    assert ExchangeRate.objects.get().rate == Decimal("90")


# --- re-conversion ----------------------------------------------------------------------------


def test_a_changed_rate_reconverts_exactly_the_orders_it_decides(
    shop: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    before = amounts()
    with django_capture_on_commit_callbacks(execute=True):
        result = rates_upsert(rows=[rate("2026-03-01", "EUR", "91.5")])

    # The 1st's rate decides the EUR orders of the 1st to the 9th (the 10th has its own).
    assert amounts() == {
        **before,
        "E-1": Decimal("915.00"),
        "E-2": Decimal("915.00"),
        "E-3": Decimal("915.00"),
    }
    assert stored_stats() == recount()
    job = RateReconversion.objects.get(pk=result.reconversion_id)
    assert job.ranges == [{"currency": "EUR", "start": "2026-03-01", "end": "2026-03-09"}]
    assert (job.status, job.total, job.done, job.changed_orders, job.changed_customers) == (
        "succeeded",
        3,
        3,
        3,
        2,
    )


def test_a_missing_rate_added_takes_over_from_the_day_it_names(
    shop: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    before = amounts()
    with django_capture_on_commit_callbacks(execute=True):
        result = rates_upsert(rows=[rate("2026-03-05", "EUR", "95")])

    assert amounts() == {**before, "E-2": Decimal("950.00"), "E-3": Decimal("950.00")}
    assert stored_stats() == recount()
    job = RateReconversion.objects.get(pk=result.reconversion_id)
    assert job.ranges == [{"currency": "EUR", "start": "2026-03-05", "end": "2026-03-10"}]


def test_a_rate_for_days_without_stored_orders_queues_nothing(
    shop: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = rates_upsert(
            rows=[rate("2026-04-01", "EUR", "95"), rate("2026-03-20", "GBP", "1")]
        )

    assert result.created == 2
    assert result.reconversion_id is None
    assert callbacks == []
    assert not RateReconversion.objects.exists()


def test_orders_refused_for_want_of_a_rate_are_not_reconverted_they_are_resent(
    shop: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    refused = orders_bulk_upsert(rows=[order("G-1", "C-1", "5.00", "GBP", "2026-03-03")])
    assert refused.errors[0].field == "currency"

    with django_capture_on_commit_callbacks(execute=True):
        rates_upsert(rows=[rate("2026-03-03", "GBP", "105")])
    resent = orders_bulk_upsert(rows=[order("G-1", "C-1", "5.00", "GBP", "2026-03-03")])

    assert resent.created == 1
    assert Order.objects.get(external_id="G-1").amount == Decimal("525.00")
    assert stored_stats() == recount()


def test_reconversion_runs_in_batches_with_progress_and_moves_customers_updated_at(
    shop: None, django_capture_on_commit_callbacks: OnCommit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconversion_module, "RECONVERT_BATCH", 2)
    progress: list[tuple[int | None, int]] = []
    original = reconversion_module._batch_reconvert

    def watched(currency: str, batch: list[Any]) -> tuple[int, int]:
        job = RateReconversion.objects.get()
        progress.append((job.total, job.done))
        return original(currency, batch)

    monkeypatch.setattr(reconversion_module, "_batch_reconvert", watched)
    stamp_before = Customer.objects.get(external_id="C-1").updated_at
    with django_capture_on_commit_callbacks(execute=True):
        rates_upsert(rows=[rate("2026-03-01", "EUR", "80")])

    assert progress == [(3, 0), (3, 2)]
    assert RateReconversion.objects.get().percent == 100
    assert Customer.objects.get(external_id="C-1").updated_at > stamp_before
    assert stored_stats() == recount()


def test_a_reconversion_run_again_changes_nothing(
    shop: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        result = rates_upsert(rows=[rate("2026-03-01", "EUR", "91.5")])
    assert result.reconversion_id is not None
    RateReconversion.objects.filter(pk=result.reconversion_id).update(status="running")
    before = (amounts(), stored_stats())

    job = reconversion_run(reconversion_id=result.reconversion_id)

    assert (job.status, job.changed_orders) == ("succeeded", 0)
    assert (amounts(), stored_stats()) == before


def test_a_rate_that_would_overflow_an_order_fails_the_reconversion_and_changes_nothing(
    shop: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    before = (amounts(), stored_stats())
    with django_capture_on_commit_callbacks(execute=True):
        result = rates_upsert(rows=[rate("2026-03-01", "EUR", "9999999999")])

    job = RateReconversion.objects.get(pk=result.reconversion_id)
    assert job.status == "failed"
    assert "past the most an order can hold" in job.failure_reason
    assert (amounts(), stored_stats()) == before


def test_random_rate_changes_keep_every_order_and_every_customers_stats_exact(
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    generator = random.Random(16)
    start = date(2026, 1, 1)
    currencies = ["EUR", "USD", "GBP"]
    with django_capture_on_commit_callbacks(execute=True):
        rates_upsert(
            rows=[
                rate((start + timedelta(days=day)).isoformat(), currency, str(80 + day))
                for currency in currencies
                for day in range(0, 60, 5)
            ]
        )
    customers_bulk_upsert(rows=[{"external_id": f"C-{n}"} for n in range(15)])
    rows = [
        order(
            f"O-{n}",
            f"C-{generator.randrange(15)}",
            f"{generator.randrange(1, 100_000) / 100:.2f}",
            generator.choice([*currencies, shop_currency()]),
            (start + timedelta(days=generator.randrange(60))).isoformat(),
            status=generator.choice(["completed", "completed", "cancelled"]),
        )
        for n in range(200)
    ]
    assert orders_bulk_upsert(rows=rows).errors == []

    for _round in range(5):
        changes = [
            rate(
                (start + timedelta(days=generator.randrange(60))).isoformat(),
                generator.choice(currencies),
                f"{generator.uniform(0.5, 200):.6f}",
            )
            for _change in range(4)
        ]
        with django_capture_on_commit_callbacks(execute=True):
            rates_upsert(rows=changes)

        assert stored_stats() == recount()
        for key, original, currency, ordered_at, amount in Order.objects.values_list(
            "external_id", "original_amount", "currency", "ordered_at", "amount"
        ):
            expected_rate = rate_for(currency, order_day(ordered_at))
            assert expected_rate is not None
            assert amount == amount_at_rate(original, expected_rate), key


# --- the command ------------------------------------------------------------------------------


def test_import_rates_stores_a_good_file_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("date,currency,rate\n2026-03-01,EUR,90.25\n2026-03-01,USD,83\n")
    out: list[str] = []

    for _run in range(2):
        call_command("import_rates", str(path), stdout=_Sink(out), stderr=_Sink(out))

    assert out[0].startswith("Rates: 2 created, 0 updated, 0 unchanged, 0 errors.")
    assert out[-1].startswith("Rates: 0 created, 0 updated, 2 unchanged, 0 errors.")
    assert ExchangeRate.objects.count() == 2


def test_import_rates_reports_bad_rows_by_line(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text(
        "date,currency,rate\n2026-03-01,EUR,90.25\nyesterday,USD,83\n2026-03-02,USD,-1\n"
    )
    out: list[str] = []
    errors: list[str] = []

    call_command("import_rates", str(path), stdout=_Sink(out), stderr=_Sink(errors))

    assert errors == [
        "line 3: date: Must be a date written YYYY-MM-DD.\n",
        "line 4: rate: rate must be more than 0, got '-1'.\n",
    ]
    assert out[0].startswith("Rates: 1 created, 0 updated, 0 unchanged, 2 errors.")
    assert ExchangeRate.objects.get().currency == "EUR"


def test_import_rates_refuses_a_file_without_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("day,code,value\n2026-03-01,EUR,90\n")

    with pytest.raises(CommandError, match="no date, currency, rate column"):
        call_command("import_rates", str(path))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_rates", str(tmp_path / "missing.csv"))


class _Sink:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> None:
        if text.strip():
            self.lines.append(text)

    def flush(self) -> None:
        return None


# --- the API ----------------------------------------------------------------------------------


def post(client: Client, body: Any) -> Any:
    return client.post("/api/v1/rates", data=json.dumps(body), content_type="application/json")


def test_the_api_stores_rates_and_queues_the_reconversion(
    shop: None, api_client: Client, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_client, {"rows": [rate("2026-03-01", "EUR", "91.5")]})

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["errors"]) == (0, 1, [])
    job = api_client.get(f"/api/v1/rates/reconversions/{body['reconversion_id']}").json()
    assert (job["status"], job["total"], job["done"], job["percent"]) == ("succeeded", 3, 3, 100)
    event = AuditEvent.objects.get(details__source="api", actor__isnull=False)
    assert event.action == AuditEvent.Action.RATES_IMPORTED
    assert event.actor is not None


def test_the_api_refuses_a_batch_of_bad_rows_with_422_naming_the_field(api_client: Client) -> None:
    response = post(api_client, {"rows": [rate("2026-03-01", "EUR", "zero")]})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 0, "field": "rate", "message": "rate must be a number, got 'zero'."}
    ]
    assert not ExchangeRate.objects.exists()


def test_the_api_refuses_a_body_without_rows(api_client: Client) -> None:
    response = post(api_client, {"rates": []})

    assert response.status_code == 422
    assert "rows" in json.dumps(response.json())


def test_the_api_lists_rates_newest_first_paginated(shop: None, api_client: Client) -> None:
    response = api_client.get("/api/v1/rates?currency=eur&page_size=1")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(item["date"], item["currency"], item["rate"]) for item in body["items"]] == [
        ("2026-03-10", "EUR", "92.0000000000")
    ]


def test_viewers_read_rates_but_cannot_write_them_and_strangers_neither(client: Client) -> None:
    _token, raw = api_token_create(user=UserFactory(role=Role.VIEWER), name="viewer")
    viewer = Client(headers={"Authorization": f"Bearer {raw}"})

    assert post(viewer, {"rows": [rate("2026-03-01", "EUR", "90")]}).status_code == 403
    assert viewer.get("/api/v1/rates").status_code == 200
    assert viewer.get("/api/v1/rates/reconversions").status_code == 200
    assert post(client, {"rows": [rate("2026-03-01", "EUR", "90")]}).status_code == 401
    assert client.get("/api/v1/rates").status_code == 401
    assert not ExchangeRate.objects.exists()


def test_an_unknown_reconversion_is_404(api_client: Client) -> None:
    assert api_client.get("/api/v1/rates/reconversions/999").status_code == 404


# --- the page ---------------------------------------------------------------------------------


def test_the_rates_page_lists_rates_and_the_last_reconversion(
    shop: None, viewer_client: Client, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        rates_upsert(rows=[rate("2026-03-01", "EUR", "91.5")])

    page = viewer_client.get("/customers/rates/").content.decode()

    assert page.count('data-testid="rate"') == 3
    assert "91.5" in page
    assert page.count('data-testid="reconversion"') == 1
    assert "EUR from 2026-03-01, before 2026-03-09" in page
    assert "hx-trigger" not in page.split('id="rates-page"')[1].split(">")[0]
    listing = viewer_client.get("/customers/").content.decode()
    assert 'href="/customers/rates/"' in listing


def test_the_rates_page_polls_while_a_reconversion_runs(shop: None, viewer_client: Client) -> None:
    RateReconversion.objects.create(ranges=[], status="running", total=10, done=4)

    page = viewer_client.get("/customers/rates/").content.decode()

    assert 'hx-trigger="every 2s"' in page
    assert "4 / 10" in page


def test_a_reconversion_whose_worker_was_lost_is_queued_again_and_finishes(
    shop: None, django_capture_on_commit_callbacks: OnCommit
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        result = rates_upsert(rows=[rate("2026-03-01", "EUR", "91.5")])
    stalled = timezone.now() - timedelta(seconds=reconversion_module.RECONVERSION_STALL_SECONDS + 1)
    RateReconversion.objects.filter(pk=result.reconversion_id).update(
        status="running", updated_at=stalled
    )
    fresh = RateReconversion.objects.create(ranges=[], status="running")

    with django_capture_on_commit_callbacks(execute=True):
        assert work_recover()["rate_reconversions"] == 1

    job = RateReconversion.objects.get(pk=result.reconversion_id)
    assert (job.status, job.changed_orders) == ("succeeded", 3)
    assert RateReconversion.objects.get(pk=fresh.pk).status == "running"
    assert stored_stats() == recount()
