"""The dashboard at scale: the presets kept warm by a self-renewing task, a range with no
figures computed by a task while the page polls (never in the request on a large base), the
small base computed in the request, and money in whole units on the RFM legend."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tasks import default_task_backend

from minicrm.accounts.models import Role
from minicrm.customers.models import Customer
from minicrm.customers.services import orders_bulk_upsert
from minicrm.web.date_range import PRESETS, date_range_preset
from minicrm.web.selectors import CACHE_KEY, Dashboard, dashboard_is_small
from minicrm.web.services import (
    WARM_KEY,
    WARM_SECONDS,
    dashboard_warm_ensure,
    warm_slot,
    warm_slot_start,
)
from minicrm.web.tasks import dashboard_refresh_task, dashboard_warm_task
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
DASH = "\N{EN DASH}"
CUSTOM = {"range": "custom", "from": "2024-01-01", "to": "2024-03-31"}


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


@pytest.fixture
def queued() -> Iterator[list[Any]]:
    """Swap in the dummy backend, which keeps enqueued tasks instead of running them."""
    with override_settings(TASKS=DUMMY):
        default_task_backend.clear()  # type: ignore[attr-defined]
        yield default_task_backend.results  # type: ignore[attr-defined]


@pytest.fixture
def large(settings: Any) -> None:
    """A base "too large" to compute in the request: more customers than the limit."""
    settings.MINICRM_DASHBOARD_INLINE_MAX_CUSTOMERS = 1
    for key in "AB":
        CustomerFactory(external_id=key)
    result = orders_bulk_upsert(
        rows=[
            {
                "external_id": "o-1",
                "customer_external_id": "A",
                "amount": "1234.56",
                "status": "completed",
                "ordered_at": "2024-02-10T10:00:00+00:00",
            }
        ]
    )
    assert result.errors == []


def _viewer(client: Client) -> Client:
    client.force_login(UserFactory(role=Role.VIEWER))
    return client


def _order_queries(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if "customers_order" in query["sql"]]


# --- The warm chain ----------------------------------------------------------------------------


def test_the_warm_task_computes_the_presets_and_queues_its_next_run_once(
    queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    CustomerFactory()
    slot = warm_slot()

    with django_capture_on_commit_callbacks(execute=True):
        assert dashboard_warm_task.call(slot) == len(PRESETS)

    today = timezone.localdate()
    for days in PRESETS:
        cached = cache.get(f"{CACHE_KEY}:{days}")
        assert isinstance(cached, Dashboard)
        assert cached.date_range == date_range_preset(days=days, today=today)
        assert cached.customers == 1
    [follow_up] = queued
    assert follow_up.task.func is dashboard_warm_task.func
    assert follow_up.args == [slot + 1]
    assert follow_up.task.run_after == warm_slot_start(slot + 1)
    assert cache.get(f"{WARM_KEY}:next") == slot + 1


def test_a_second_chain_on_the_same_slot_stops(
    queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    CustomerFactory()
    slot = warm_slot()
    with django_capture_on_commit_callbacks(execute=True):
        dashboard_warm_task.call(slot)
    queued.clear()
    cache.delete(f"{CACHE_KEY}:30")

    with django_capture_on_commit_callbacks(execute=True):
        assert dashboard_warm_task.call(slot) == 0

    assert queued == []
    assert cache.get(f"{CACHE_KEY}:30") is None  # it computed nothing


def test_a_late_run_catches_up_instead_of_replaying_the_missed_slots(
    queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        dashboard_warm_task.call(warm_slot() - 10)

    assert [task.args for task in queued] == [[warm_slot() + 1]]


def test_the_immediate_backend_ends_the_chain_after_one_run(
    caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
) -> None:
    CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert dashboard_warm_task.call(warm_slot()) == len(PRESETS)
    assert len(callbacks) == 1  # the next run, dropped: no recursion in tests
    assert "cannot run tasks later" in caplog.text


def test_ensure_starts_a_chain_only_when_none_is_due(
    queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    slot = warm_slot()
    with django_capture_on_commit_callbacks(execute=True):
        assert dashboard_warm_ensure() == slot + 1
        assert dashboard_warm_ensure() is None
    assert [task.args for task in queued] == [[slot + 1]]
    # A chain two slots late is dead: a new one starts.
    cache.set(f"{WARM_KEY}:next", slot - 2, WARM_SECONDS)
    with django_capture_on_commit_callbacks(execute=True):
        assert dashboard_warm_ensure() == slot + 1
    assert len(queued) == 2


def test_the_command_computes_the_presets_now_and_schedules_the_chain(
    queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    CustomerFactory.create_batch(2)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("dashboard_warm", stdout=out)
        call_command("dashboard_warm", "--schedule-only", stdout=out)

    assert re.search(r"Computed the dashboard for the last 30, 90, 365 days in \d", out.getvalue())
    assert "Scheduled the dashboard's warm-up every 5 minutes." in out.getvalue()
    assert "already scheduled" in out.getvalue()
    assert all(cache.get(f"{CACHE_KEY}:{days}").customers == 2 for days in PRESETS)
    assert [task.task.func for task in queued] == [dashboard_warm_task.func]


# --- A range with no figures -------------------------------------------------------------------


def test_the_small_base_is_counted_without_reading_past_the_limit(settings: Any) -> None:
    CustomerFactory.create_batch(3)
    settings.MINICRM_DASHBOARD_INLINE_MAX_CUSTOMERS = 3
    assert dashboard_is_small()
    settings.MINICRM_DASHBOARD_INLINE_MAX_CUSTOMERS = 2
    with CaptureQueriesContext(connection) as queries:
        assert not dashboard_is_small()
    [query] = queries.captured_queries
    assert "LIMIT 3" in query["sql"]


def test_a_cold_range_on_a_large_base_answers_at_once_and_asks_a_task_once(
    client: Client, large: None, queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    _viewer(client)

    with django_capture_on_commit_callbacks(execute=True):
        with CaptureQueriesContext(connection) as queries:
            first = client.get(reverse("web:dashboard"), CUSTOM)
        second = client.get(reverse("web:dashboard"), CUSTOM)
        poll = client.get(reverse("web:dashboard_figures"), CUSTOM)

    page = first.content.decode()
    assert first.status_code == 200
    assert "Computing the figures for this range…" in page
    assert 'hx-trigger="every 2s"' in page
    assert f'hx-get="{reverse("web:dashboard_figures")}?range=custom&amp;from=2024-01-01' in page
    assert 'data-testid="range-picker"' in page  # the frame is there to pick another range
    assert "revenue-chart" not in page
    assert _order_queries(queries) == []  # nothing computed in the request
    assert "Computing the figures" in second.content.decode()
    assert poll.status_code == 204
    [task] = queued  # asked once, not on every visit or poll
    assert task.task.func is dashboard_refresh_task.func
    assert task.args == ["2024-01-01", "2024-03-31", None]


def test_the_poll_answers_the_figures_once_the_task_has_computed_them(
    client: Client, large: None, queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    _viewer(client)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(reverse("web:dashboard"), CUSTOM)
    [task] = queued
    assert client.get(reverse("web:dashboard_figures"), CUSTOM).status_code == 204

    assert dashboard_refresh_task.call(*task.args) == 2
    poll = client.get(reverse("web:dashboard_figures"), CUSTOM)
    page = client.get(reverse("web:dashboard"), CUSTOM).content.decode()

    fragment = poll.content.decode()
    assert poll.status_code == 200
    assert fragment.strip().startswith('<div class="stack" id="dashboard-figures">')
    assert "hx-trigger" not in fragment  # the polling stops with the swap
    assert 'data-stat="revenue"' in fragment
    assert "₹1,235" in fragment
    assert 'id="dashboard-chart-data"' in fragment
    # The line that says when they were computed comes along, out of band.
    assert re.search(r'id="dashboard-computed-at"[^>]*hx-swap-oob="true">Computed at', fragment)
    assert "Computing the figures" not in page
    assert "₹1,235" in page
    assert len(queued) == 1


def test_a_failed_computation_frees_the_range_for_the_next_poll(
    client: Client, large: None, queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    _viewer(client)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(reverse("web:dashboard"), CUSTOM)
        cache.delete(f"{CACHE_KEY}:2024-01-01_2024-03-31:refreshing")  # its lock expired
        client.get(reverse("web:dashboard_figures"), CUSTOM)
    assert len(queued) == 2


def test_a_small_base_computes_a_new_range_in_the_request(
    client: Client, queued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    _viewer(client)
    CustomerFactory(external_id="A")

    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(reverse("web:dashboard"), CUSTOM).content.decode()

    assert "Computing the figures" not in page
    assert 'id="revenue-chart"' in page
    assert "refreshes every 5 minutes" in page
    assert queued == []


# --- Money -------------------------------------------------------------------------------------


def test_the_monetary_quintiles_are_whole_units_that_meet(client: Client) -> None:
    _viewer(client)
    now = datetime.now(UTC)
    Customer.objects.bulk_create(
        Customer(
            external_id=f"M-{index}",
            order_count=1,
            total_spend=Decimal("5104.46") + index * Decimal("1000.27"),
            last_order_at=now - timedelta(days=index + 1),
            first_order_at=now - timedelta(days=index + 1),
        )
        for index in range(10)
    )

    page = client.get(reverse("web:dashboard")).content.decode()

    legend = re.search(r'data-testid="rfm-monetary">(.*?)</p>', page, re.S)
    assert legend is not None
    text = re.sub(r"<[^>]+>", "", legend.group(1))
    assert not re.search(r"\d\.\d\d", text)  # no paise among totals
    # Edges at ranks 2, 4, 6 and 8: ₹6,104.73, ₹8,105.27, ₹10,105.81, ₹12,106.35 rounded.
    assert f"M1 up to ₹6,105 · M2 ₹6,105{DASH}₹8,105 · M3 ₹8,105{DASH}₹10,106" in text
    assert "M5 ₹12,106 or more" in text
