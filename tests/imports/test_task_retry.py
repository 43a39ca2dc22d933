"""A transient database error during an import, under the immediate backend (the tests' default,
and MINICRM_TASKS_BACKEND=immediate), which cannot run a task later: the retry runs at once
instead of raising InvalidTaskError, and the attempt limit ends it with a clear status."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError
from django_tasks import TaskResultStatus

from minicrm.customers.models import Customer
from minicrm.imports import services
from minicrm.imports.models import Import
from minicrm.imports.services import import_create
from minicrm.imports.tasks import import_process_task

from .conftest import csv_file

# About the immediate backend itself, whichever backend the run uses.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("immediate_tasks")]

OnCommit = Callable[..., Any]
CUSTOMERS_CSV = (
    "external_id,email,first_name\nC-1,asha@example.com,Asha\nC-2,ravi@example.com,Ravi\n"
)


def _queued_import() -> Import:
    return import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )


def _locked_for(failures: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first `failures` runs of the import meet a locked database; returns the runs' ids."""
    real = services.import_process
    runs: list[int] = []

    def flaky(*, import_id: int, **kwargs: Any) -> Import:
        runs.append(import_id)
        if len(runs) <= failures:
            raise OperationalError("database is locked")
        return real(import_id=import_id, **kwargs)

    monkeypatch.setattr(services, "import_process", flaky)
    return runs


def test_a_transient_error_is_retried_at_once_where_the_backend_cannot_defer(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: OnCommit
) -> None:
    created = _queued_import()
    runs = _locked_for(1, monkeypatch)
    assert not import_process_task.get_backend().supports_defer

    with django_capture_on_commit_callbacks(execute=True):
        result = import_process_task.enqueue(created.pk)

    # Before the one retry helper, the retry asked this backend to defer: InvalidTaskError.
    assert (result.status, result.errors) == (TaskResultStatus.SUCCESSFUL, [])
    assert runs == [created.pk, created.pk]
    stored = Import.objects.get(pk=created.pk)
    assert (stored.status, stored.created, stored.failure_reason) == ("succeeded", 2, "")
    assert Customer.objects.count() == 2


def test_an_import_whose_database_keeps_failing_is_failed_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: OnCommit, settings: Any
) -> None:
    settings.MINICRM_TASK_DATABASE_MAX_ATTEMPTS = 3
    created = _queued_import()
    runs = _locked_for(10, monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        result = import_process_task.enqueue(created.pk)

    # The first attempt handed over to the next; the last one recorded the failure and raised,
    # which the backend keeps on that attempt's result (the worker carries on).
    assert (result.status, result.errors) == (TaskResultStatus.SUCCESSFUL, [])
    assert runs == [created.pk] * 3
    stored = Import.objects.get(pk=created.pk)
    assert stored.status == Import.Status.FAILED
    assert stored.failure_reason == "The database kept failing: database is locked"
    assert not Customer.objects.exists()
