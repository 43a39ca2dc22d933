"""/healthz answers while the process lives, whatever the database does; /readyz answers 200
only when every database, the task queue and the cache answer, else 503 naming what failed,
and never says where those services are or how to reach them."""

import json
from typing import Any

import pytest
from django.db import OperationalError, connections
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from minicrm.web.health import DATABASE_DOWN
from tests.conftest import service_url
from tests.ports import free_port

RQ_TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every use of the default database fails as a lost server does (connecting raises)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "ensure_connection", refuse)


def _get(path: str) -> tuple[int, dict[str, Any], str]:
    response = Client().get(path)
    body = response.content.decode()
    return response.status_code, json.loads(body), body


@pytest.mark.django_db
def test_healthz_answers_without_a_query(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        status, answer, _body = _get("/healthz")

    assert (status, answer) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_healthz_stays_up_when_the_database_is_down(database_down: None) -> None:
    status, answer, _body = _get("/healthz")

    assert (status, answer) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_readyz_is_200_when_everything_answers() -> None:
    status, answer, _body = _get("/readyz")

    assert status == 200, answer
    assert answer["status"] == "ready"
    assert answer["failing"] == []
    assert set(answer["checks"]) == {"database", "task_queue", "cache"}
    assert all(check["ok"] for check in answer["checks"].values())
    # The test settings run tasks in place: nothing to reach, and the answer says so.
    assert answer["checks"]["task_queue"]["backend"] == "immediate"
    assert answer["snapshot"]["state"] in {"ready", "building", "failed", "absent"}


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_readyz_reads_the_task_table_with_the_database_backend() -> None:
    with CaptureQueriesContext(connections["default"]) as queries:
        status, answer, _body = _get("/readyz")

    assert status == 200, answer
    assert answer["checks"]["task_queue"]["backend"] == "database"
    assert answer["checks"]["task_queue"]["ok"] is True
    table = DBTaskResult._meta.db_table
    assert any(table in query["sql"] for query in queries.captured_queries), queries


@pytest.mark.django_db
@override_settings(TASKS=DATABASE_TASKS)
def test_readyz_is_503_naming_the_database_when_it_is_down(database_down: None) -> None:
    status, answer, _body = _get("/readyz")

    assert status == 503
    assert answer["status"] == "not ready"
    # The database task queue lives in the same database: not tried, down too. The cache is not.
    assert answer["failing"] == ["database", "task_queue"]
    assert answer["checks"]["database"]["error"] == "OperationalError"
    assert answer["checks"]["task_queue"]["error"] == DATABASE_DOWN
    assert answer["checks"]["cache"]["ok"] is True


@pytest.mark.django_db
@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "minicrm_cache",
        }
    }
)
def test_readyz_does_not_try_a_database_cache_when_the_database_is_down(
    database_down: None,
) -> None:
    status, answer, _body = _get("/readyz")

    assert status == 503
    assert answer["failing"] == ["database", "cache"]
    assert answer["checks"]["cache"]["error"] == DATABASE_DOWN


@pytest.mark.django_db
def test_readyz_is_503_naming_the_queue_when_redis_is_down() -> None:
    port = free_port()  # nothing listens there: connections are refused
    queues = {"default": {"URL": f"redis://:queue-secret@127.0.0.1:{port}/0"}}
    with override_settings(TASKS=RQ_TASKS, RQ_QUEUES=queues):
        status, answer, body = _get("/readyz")

    assert status == 503
    assert answer["failing"] == ["task_queue"]
    assert answer["checks"]["task_queue"]["backend"] == "rq"
    assert answer["checks"]["task_queue"]["error"] == "ConnectionError"
    # Public answer: no password, host or port of the service.
    assert "queue-secret" not in body
    assert str(port) not in body


@pytest.mark.django_db
def test_readyz_is_503_naming_the_cache_when_it_is_down() -> None:
    port = free_port()
    cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    with override_settings(CACHES=cache):
        status, answer, _body = _get("/readyz")

    assert status == 503
    assert answer["failing"] == ["cache"]


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_is_200_with_the_rq_backend_on_a_live_redis() -> None:
    url = service_url("MINICRM_TEST_REDIS_URL", "Redis")
    with override_settings(TASKS=RQ_TASKS, RQ_QUEUES={"default": {"URL": url}}):
        status, answer, _body = _get("/readyz")

    assert status == 200, answer
    assert answer["checks"]["task_queue"]["backend"] == "rq"


def test_readyz_refuses_other_methods(client: Client) -> None:
    assert client.post("/readyz").status_code == 405
    assert client.post("/healthz").status_code == 405
