"""Per-token API rate limits: a fixed window per token, 429 with Retry-After past the limit."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings

from minicrm.accounts import api_ratelimit
from minicrm.accounts.models import Role, User
from minicrm.accounts.services import api_token_create
from minicrm.customers.models import Customer
from tests.factories import UserFactory
from tests.sqlite_file_load import sqlite_file_load

LIMIT = 3
# 10 s into a 60 s window: 50 s are left.
START = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC).timestamp()


class Clock:
    """The rate limit's clock, stopped at START until a test moves it."""

    def __init__(self) -> None:
        self.now = START

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    # Only the rate limit's clock: freezing the whole process's time also fools pydantic.
    stopped = Clock()
    monkeypatch.setattr(api_ratelimit, "time", stopped)
    return stopped


@pytest.fixture(autouse=True)
def _small_limit(clock: Clock) -> Iterator[None]:
    # Counters live in the cache, which outlives each test's rolled-back database (and its ids).
    cache.clear()
    with override_settings(MINICRM_API_RATE_LIMIT=LIMIT, MINICRM_API_RATE_WINDOW_SECONDS=60):
        yield
    cache.clear()


def _token_client(user: User) -> Client:
    _token, raw = api_token_create(user=user, name="rate")
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.mark.django_db
def test_the_request_past_the_limit_is_429_with_retry_after() -> None:
    client = _token_client(UserFactory(role=Role.VIEWER))

    allowed = [client.get("/api/v1/me").status_code for _ in range(LIMIT)]
    refused = client.get("/api/v1/me")

    assert allowed == [200] * LIMIT
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Too many requests for this token; retry after 50 seconds."}
    assert refused["Retry-After"] == "50"


@pytest.mark.django_db
def test_a_refused_write_changes_nothing() -> None:
    client = _token_client(UserFactory(role=Role.ADMIN))
    rows = {"rows": [{"external_id": "C-1", "first_name": "Ada"}]}

    for _ in range(LIMIT):
        client.get("/api/v1/me")
    refused = client.post("/api/v1/customers/bulk", rows, content_type="application/json")

    assert refused.status_code == 429
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_a_bulk_request_counts_once_whatever_its_rows() -> None:
    client = _token_client(UserFactory(role=Role.ADMIN))
    rows = {"rows": [{"external_id": f"C-{n}", "first_name": "Ada"} for n in range(50)]}

    bulk = client.post("/api/v1/customers/bulk", rows, content_type="application/json")
    after = [client.get("/api/v1/me").status_code for _ in range(LIMIT)]

    assert bulk.status_code == 200, bulk.content
    assert bulk.json()["created"] == 50
    assert after == [200] * (LIMIT - 1) + [429]


@pytest.mark.django_db
def test_another_token_is_not_affected() -> None:
    user = UserFactory(role=Role.MARKETER)
    first, second = _token_client(user), _token_client(user)

    for _ in range(LIMIT):
        first.get("/api/v1/me")
    assert first.get("/api/v1/me").status_code == 429
    answers = [second.get("/api/v1/me").status_code for _ in range(LIMIT)]

    assert answers == [200] * LIMIT


@pytest.mark.django_db
def test_requests_pass_again_once_the_window_ends(clock: Clock) -> None:
    client = _token_client(UserFactory(role=Role.VIEWER))

    for _ in range(LIMIT):
        client.get("/api/v1/me")
    clock.now += 49.5
    still = client.get("/api/v1/me")
    clock.now += 0.5  # 09:01:00, a new window
    again = [client.get("/api/v1/me").status_code for _ in range(LIMIT)]
    past = client.get("/api/v1/me")

    assert still.status_code == 429
    assert still["Retry-After"] == "1"
    assert again == [200] * LIMIT
    assert past.status_code == 429
    assert past["Retry-After"] == "60"


@pytest.mark.django_db
def test_browser_sessions_are_not_limited(client: Client) -> None:
    client.force_login(UserFactory(role=Role.VIEWER))

    answers = [client.get("/api/v1/me").status_code for _ in range(LIMIT * 3)]

    assert answers == [200] * (LIMIT * 3)


@pytest.mark.django_db
def test_a_limit_of_zero_turns_it_off() -> None:
    client = _token_client(UserFactory(role=Role.VIEWER))

    with override_settings(MINICRM_API_RATE_LIMIT=0):
        answers = [client.get("/api/v1/me").status_code for _ in range(LIMIT * 3)]

    assert answers == [200] * (LIMIT * 3)


@pytest.mark.django_db
def test_an_invalid_token_is_not_counted_and_stays_401() -> None:
    client = Client(headers={"Authorization": "Bearer mcrm_unknown"})

    answers = [client.get("/api/v1/me").status_code for _ in range(LIMIT + 2)]

    assert answers == [401] * (LIMIT + 2)


@pytest.mark.django_db
def test_the_openapi_document_names_the_429(client: Client) -> None:
    client.force_login(UserFactory(role=Role.VIEWER))

    document = client.get("/api/v1/openapi.json").json()

    assert (
        "Retry-After" in document["paths"]["/api/v1/me"]["get"]["responses"]["429"]["description"]
    )


DATABASE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "minicrm_cache",
    }
}
THREADS = 20


@pytest.mark.django_db(transaction=True)
@pytest.mark.server_database
@pytest.mark.timeout(120)
def test_parallel_requests_never_pass_the_limit_on_the_database_cache() -> None:
    """20 clients at once with one token, each on its own connection, counted in the database
    cache (shared by every web process without Redis): exactly the limit get through."""
    if connection.vendor == "sqlite":
        pytest.skip("the in-memory SQLite database cannot show locking; see the SQLite file test")
    _token, raw = api_token_create(user=UserFactory(role=Role.VIEWER), name="rate")
    start = threading.Barrier(THREADS)

    def call(_: int) -> int:
        client = Client(headers={"Authorization": f"Bearer {raw}"})
        try:
            start.wait(timeout=30)
            return client.get("/api/v1/me").status_code
        finally:
            connection.close()

    # The clock stays stopped, so the window cannot end in the middle of the burst.
    with override_settings(CACHES=DATABASE_CACHE), ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(call, range(THREADS), timeout=90))

    assert sorted(answers) == [200] * LIMIT + [429] * (THREADS - LIMIT)


@pytest.mark.once
@pytest.mark.timeout(180)
def test_parallel_requests_never_pass_the_limit_on_a_sqlite_file(tmp_path: Path) -> None:
    result = sqlite_file_load("tests.accounts.ratelimit_load", str(THREADS), "5", var_dir=tmp_path)

    assert result["statuses"] == [200] * 5 + [429] * (THREADS - 5)
