from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone
from django_tasks import default_task_backend

from minicrm.accounts.models import User
from minicrm.core.errors import ApplicationError, ConflictError
from minicrm.core.limits import MAX_WORK_RECOVERIES
from minicrm.customers.models import Customer, Order
from minicrm.imports import services
from minicrm.imports.models import Import
from minicrm.imports.reader import ImportFileError
from minicrm.imports.services import (
    import_create,
    import_process,
    import_resume,
    imports_recover,
)
from minicrm.imports.tasks import import_process_task
from tests.factories import CustomerFactory

from .conftest import csv_file

pytestmark = pytest.mark.django_db

CUSTOMERS_CSV = (
    "external_id,email,first_name,last_name,city,tags,marketing_consent\n"
    "C-1,asha@example.com,Asha,Rao,Pune,vip|newsletter,true\n"
    "C-2,ravi@example.com,Ravi,Iyer,Delhi,,false\n"
    "C-3,meena@example.com,Meena,Das,Mumbai,new,\n"
)


def _process(content: str | bytes, *, kind: str = "customers", **kwargs: Any) -> Import:
    created = import_create(file=csv_file(content), kind=kind, created_by=None, enqueue=False)
    return import_process(import_id=created.pk, **kwargs)


def _counts(import_: Import) -> dict[str, Any]:
    return {
        "status": import_.status,
        "total_rows": import_.total_rows,
        "processed_rows": import_.processed_rows,
        "created": import_.created,
        "updated": import_.updated,
        "unchanged": import_.unchanged,
        "error_count": import_.error_count,
    }


def test_a_customers_file_is_stored(marketer: User) -> None:
    created = import_create(
        file=csv_file(CUSTOMERS_CSV, "shop.csv"), kind="customers", created_by=marketer
    )
    assert created.status == Import.Status.QUEUED
    assert created.original_filename == "shop.csv"

    done = import_process(import_id=created.pk)

    assert _counts(done) == {
        "status": "succeeded",
        "total_rows": 3,
        "processed_rows": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "error_count": 0,
    }
    assert done.started_at is not None
    assert done.finished_at is not None
    asha = Customer.objects.get(external_id="C-1")
    assert (asha.email, asha.first_name, asha.city, asha.marketing_consent) == (
        "asha@example.com",
        "Asha",
        "Pune",
        True,
    )
    assert sorted(asha.tag_rows.values_list("name", flat=True)) == ["newsletter", "vip"]
    assert Customer.objects.get(external_id="C-2").marketing_consent is False


def test_importing_the_same_file_again_updates_nothing() -> None:
    _process(CUSTOMERS_CSV)

    again = _process(CUSTOMERS_CSV.replace("Pune", "Nashik"))

    assert (again.created, again.updated, again.unchanged) == (0, 1, 2)
    assert Customer.objects.get(external_id="C-1").city == "Nashik"


def test_an_orders_file_is_stored_and_the_stats_follow() -> None:
    CustomerFactory(external_id="C-1")
    content = (
        "External_ID,Customer_External_ID,Amount,Ordered_At,Status\n"
        "O-1,C-1,1000.50,2025-01-10,completed\n"
        "O-2,C-1,499.50,2025-02-10T10:00:00+05:30,completed\n"
        "O-3,C-1,300,2025-03-01,cancelled\n"
    )

    done = _process(content, kind="orders")

    assert (done.status, done.created, done.error_count) == ("succeeded", 3, 0)
    customer = Customer.objects.get(external_id="C-1")
    assert customer.total_spend == Decimal("1500.00")
    assert customer.order_count == 2
    assert Order.objects.get(external_id="O-3").status == "cancelled"


def test_headers_are_matched_without_case_and_spaces() -> None:
    done = _process(" EXTERNAL_ID , Email \nC-9,x@example.com\n")

    assert (done.status, done.created) == ("succeeded", 1)
    assert Customer.objects.get(external_id="C-9").email == "x@example.com"


def test_unknown_columns_are_ignored_and_noted() -> None:
    done = _process("external_id,Loyalty tier\nC-9,gold\n")

    assert done.created == 1
    assert done.notes == ['Ignored column(s) that Mini CRM does not know: "Loyalty tier".']


def test_a_missing_column_refuses_the_upload_and_stores_nothing() -> None:
    with pytest.raises(ImportFileError) as caught:
        import_create(file=csv_file("external_id,amount\nO-1,5\n"), kind="orders", created_by=None)

    assert caught.value.message.startswith(
        'Missing required columns: "customer_external_id", "ordered_at".'
    )
    assert not Import.objects.exists()


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ApplicationError) as caught:
        import_create(file=csv_file(CUSTOMERS_CSV), kind="products", created_by=None)

    assert (caught.value.field, caught.value.message) == (
        "kind",
        "Kind must be customers or orders, not 'products'.",
    )
    assert not Import.objects.exists()


def test_broken_rows_become_errors_and_the_valid_rows_are_stored() -> None:
    content = (
        "external_id,email,signed_up_at\n"
        "C-1,ok@example.com,2024-01-01\n"
        "C-2,not-an-email,2024-01-01\n"
        "C-3,ok3@example.com\n"
        "C-4,ok4@example.com,yesterday\n"
        ",empty@example.com,2024-01-01\n"
        "C-6,ok6@example.com,2024-01-01,extra\n"
        "C-7,ok7@example.com,\n"
    )

    done = _process(content)

    assert _counts(done) == {
        "status": "succeeded",
        "total_rows": 7,
        "processed_rows": 7,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "error_count": 5,
    }
    assert done.failed_rows == 5
    assert [(error["row"], error["field"]) for error in done.errors] == [
        (3, "email"),
        (4, ""),
        (5, "signed_up_at"),
        (6, "external_id"),
        (7, ""),
    ]
    assert done.errors[1]["message"] == "Expected 3 columns, found 2."
    assert done.errors[0]["message"] == "'not-an-email' is not a valid email address."
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["C-1", "C-7"]


def test_an_order_for_an_unknown_customer_is_a_row_error() -> None:
    content = "external_id,customer_external_id,amount,ordered_at\nO-1,NOPE,10,2025-01-01\n"

    done = _process(content, kind="orders")

    assert done.errors == [
        {
            "row": 2,
            "field": "customer_external_id",
            "column": "customer_external_id",
            "value": "NOPE",
            "message": "No customer has external_id 'NOPE'.",
        }
    ]
    assert not Order.objects.exists()


def test_a_file_that_is_not_utf8_fails_with_a_clear_reason_and_stores_nothing() -> None:
    rows = "".join(f"C-{index:05d},Name{index}\n" for index in range(8000))
    content = ("external_id,first_name\n" + rows).encode() + "C-last,Zoë\n".encode("cp1252")

    done = _process(content)

    assert done.status == Import.Status.FAILED
    assert done.failure_reason.startswith(
        "The file is not UTF-8 encoded (byte 0xEB on line 8,002 cannot be read)."
    )
    assert done.finished_at is not None
    assert not Customer.objects.exists()


def test_a_file_with_a_header_and_no_rows_fails() -> None:
    done = _process("external_id,email\n\n")

    assert (done.status, done.failure_reason) == (
        "failed",
        "The file has a header row but no data rows.",
    )


def test_a_stored_file_that_went_missing_fails_the_import() -> None:
    created = import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )
    created.file.storage.delete(created.file.name)

    done = import_process(import_id=created.pk)

    assert (done.status, done.failure_reason) == ("failed", "The file is missing.")
    assert not Customer.objects.exists()


def test_the_task_of_a_deleted_import_does_nothing() -> None:
    created = import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )
    Import.objects.filter(pk=created.pk).delete()

    import_process_task.call(created.pk)

    assert not Customer.objects.exists()


def test_an_empty_file_is_refused_at_upload() -> None:
    with pytest.raises(ImportFileError, match="The file is empty"):
        import_create(file=csv_file(b""), kind="customers", created_by=None)


def test_progress_is_saved_after_every_chunk() -> None:
    content = "external_id\n" + "".join(f"C-{index}\n" for index in range(7))
    seen: list[tuple[int | None, int, int]] = []

    def watch(current: Import) -> None:
        stored = Import.objects.get(pk=current.pk)  # what a poller would read
        seen.append((stored.total_rows, stored.processed_rows, stored.created))

    _process(content, on_progress=watch, chunk_size=3)

    assert seen == [(7, 0, 0), (7, 3, 3), (7, 6, 6), (7, 7, 7)]


@pytest.mark.parametrize("chunk_size", [1, 10])
def test_a_key_repeated_in_the_file_is_a_row_error_naming_the_first_row(chunk_size: int) -> None:
    content = "external_id,city\nC-1,Pune\nC-2,Goa\nC-1,Delhi\n"

    done = _process(content, chunk_size=chunk_size)

    assert (done.created, done.updated, done.error_count, done.failed_rows) == (2, 0, 1, 1)
    assert done.errors == [
        {
            "row": 4,
            "field": "external_id",
            "column": "external_id",
            "value": "C-1",
            "message": "'C-1' already appears in row 2 of this file; each record may appear "
            "only once.",
        }
    ]
    assert Customer.objects.get(external_id="C-1").city == "Pune"


def test_only_the_first_errors_are_kept_but_all_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "MAX_STORED_ERRORS", 4)
    content = "external_id,email\n" + "".join(f"C-{index},bad\n" for index in range(10))

    done = _process(content, chunk_size=3)

    assert done.error_count == 10
    assert [error["row"] for error in done.errors] == [2, 3, 4, 5]


def test_running_a_finished_import_again_does_nothing() -> None:
    done = _process(CUSTOMERS_CSV)
    Customer.objects.all().delete()

    again = import_process(import_id=done.pk)

    assert _counts(again) == _counts(done)
    assert not Customer.objects.exists()


def test_an_interrupted_import_resumes_after_its_last_chunk() -> None:
    content = "external_id\n" + "".join(f"C-{index}\n" for index in range(5))
    created = import_create(
        file=csv_file(content), kind="customers", created_by=None, enqueue=False
    )
    # As a worker killed after its first chunk of 2 rows leaves it.
    Customer.objects.bulk_create([Customer(external_id="C-0"), Customer(external_id="C-1")])
    Import.objects.filter(pk=created.pk).update(
        status=Import.Status.RUNNING, started_at=timezone.now(), processed_rows=2, created=2
    )

    done = import_process(import_id=created.pk, chunk_size=2)

    assert _counts(done) == {
        "status": "succeeded",
        "total_rows": 5,
        "processed_rows": 5,
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "error_count": 0,
    }
    assert Customer.objects.count() == 5


def test_a_run_that_another_worker_overtook_stops_without_counting_twice() -> None:
    content = "external_id\n" + "".join(f"C-{index}\n" for index in range(6))
    created = import_create(
        file=csv_file(content), kind="customers", created_by=None, enqueue=False
    )

    def other_worker_moves_on(current: Import) -> None:
        if current.processed_rows == 2:
            # Another run (a resume) commits the next chunk meanwhile.
            Import.objects.filter(pk=current.pk).update(processed_rows=4, created=4)

    result = import_process(import_id=created.pk, chunk_size=2, on_progress=other_worker_moves_on)

    assert (result.status, result.processed_rows, result.created) == ("running", 4, 4)
    assert Customer.objects.count() == 2  # this run's next chunk was rolled back


def test_a_failed_chunk_leaves_the_progress_of_the_committed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = "external_id\n" + "".join(f"C-{index}\n" for index in range(5))
    created = import_create(
        file=csv_file(content), kind="customers", created_by=None, enqueue=False
    )
    real_upsert = services.customers_bulk_upsert
    calls: list[int] = []

    def flaky(*, rows: Any, key: str) -> Any:
        calls.append(len(rows))
        if len(calls) == 2:
            raise OperationalError("database is locked")
        return real_upsert(rows=rows, key=key)

    monkeypatch.setattr(services, "customers_bulk_upsert", flaky)

    with pytest.raises(OperationalError):
        import_process(import_id=created.pk, chunk_size=2)

    stored = Import.objects.get(pk=created.pk)
    assert (stored.status, stored.processed_rows, stored.created) == ("running", 2, 2)
    assert Customer.objects.count() == 2

    monkeypatch.setattr(services, "customers_bulk_upsert", real_upsert)
    done = import_process(import_id=created.pk, chunk_size=2)
    assert (done.status, done.processed_rows, done.created) == ("succeeded", 5, 5)


def test_creating_an_import_queues_its_task_after_commit(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        created = import_create(file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None)

    assert len(callbacks) == 1
    created.refresh_from_db()
    assert (created.status, created.created) == ("succeeded", 3)


DUMMY_TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}


@override_settings(TASKS=DUMMY_TASKS)
def test_the_task_retries_a_transient_database_error_later(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    created = import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )

    def locked(**kwargs: Any) -> Import:
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "import_process", locked)
    default_task_backend.clear()  # type: ignore[attr-defined]

    with django_capture_on_commit_callbacks(execute=True):
        import_process_task.call(created.pk)

    retry = default_task_backend.results[-1]  # type: ignore[attr-defined]
    assert retry.args == [created.pk, 2]
    assert retry.task.run_after > timezone.now()
    assert Import.objects.get(pk=created.pk).status == Import.Status.QUEUED


def test_the_task_records_why_an_import_failed_for_good(monkeypatch: pytest.MonkeyPatch) -> None:
    created = import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )

    def broken(**kwargs: Any) -> Import:
        raise ValueError("something unexpected")

    monkeypatch.setattr(services, "import_process", broken)

    with pytest.raises(ValueError, match="something unexpected"):
        import_process_task.call(created.pk)

    stored = Import.objects.get(pk=created.pk)
    assert stored.status == Import.Status.FAILED
    assert stored.failure_reason == "Processing stopped unexpectedly: something unexpected"


def test_resume_queues_an_active_import_and_refuses_a_finished_one(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    created = import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )

    with django_capture_on_commit_callbacks(execute=True):
        import_resume(import_id=created.pk)

    created.refresh_from_db()
    assert created.status == Import.Status.SUCCEEDED
    with pytest.raises(ConflictError, match="has finished"):
        import_resume(import_id=created.pk)


def test_the_upload_is_deleted_once_every_row_is_stored(media_root: Any) -> None:
    done = _process(CUSTOMERS_CSV)

    assert done.status == Import.Status.SUCCEEDED
    assert not [path for path in media_root.rglob("*") if path.is_file()]
    # Progress and counts stay on the import for the page and the API.
    assert (done.created, done.processed_rows) == (3, 3)


def test_a_failed_import_keeps_its_upload_so_it_can_be_resumed(media_root: Any) -> None:
    done = _process("external_id,email\n\n")

    assert done.status == Import.Status.FAILED
    assert len([path for path in media_root.rglob("*.csv") if path.is_file()]) == 1


def test_a_file_over_the_size_limit_is_refused_naming_the_field(settings: Any) -> None:
    settings.MINICRM_MAX_IMPORT_BYTES = 1024**2
    content = "external_id,first_name\n" + "".join(f"C-{n:07d},Name\n" for n in range(80_000))

    with pytest.raises(ApplicationError) as refused:
        import_create(file=csv_file(content), kind="customers", created_by=None, enqueue=False)

    assert refused.value.field == "file"
    assert refused.value.message == (
        "The file is 1 MB; an import takes at most 1 MB. "
        "Split it into smaller files (each keeps the header row)."
    )
    assert not Import.objects.exists()


def _lost(created: Import, *, processed: int, lease_seconds: float = -1, **fields: Any) -> None:
    """Leave the import as a worker killed after `processed` rows leaves it."""
    Import.objects.filter(pk=created.pk).update(
        status=Import.Status.RUNNING,
        started_at=timezone.now(),
        processed_rows=processed,
        created=processed,
        lease_token="a" * 32,
        lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds),
        **fields,
    )


def test_the_sweep_resumes_a_lost_import_once_with_exact_counts(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    content = "external_id\n" + "".join(f"C-{index}\n" for index in range(5))
    created = import_create(
        file=csv_file(content), kind="customers", created_by=None, enqueue=False
    )
    Customer.objects.bulk_create([Customer(external_id="C-0"), Customer(external_id="C-1")])
    _lost(created, processed=2, total_rows=5)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        # A second sweeper (another worker) finds it already claimed.
        assert imports_recover() == 1
        assert imports_recover() == 0
    claimed = Import.objects.get(pk=created.pk)
    assert (claimed.status, claimed.lease_token, claimed.recoveries) == ("running", "", 1)
    assert claimed.is_recovering
    assert claimed.notes == [
        "The worker stopped after 2 of 5 rows; the import was resumed automatically from there."
    ]
    assert len(callbacks) == 1

    callbacks[0]()

    done = Import.objects.get(pk=created.pk)
    assert _counts(done) == {
        "status": "succeeded",
        "total_rows": 5,
        "processed_rows": 5,
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "error_count": 0,
    }
    assert (done.lease_token, done.lease_expires_at) == ("", None)
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == [
        f"C-{index}" for index in range(5)
    ]


def test_the_sweep_leaves_live_queued_and_finished_imports_alone() -> None:
    live = import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )
    _lost(live, processed=1, lease_seconds=20)
    import_create(file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False)
    _process(CUSTOMERS_CSV)
    before = list(Import.objects.order_by("pk").values())

    assert imports_recover() == 0

    assert list(Import.objects.order_by("pk").values()) == before


def test_an_import_that_keeps_losing_its_worker_is_failed_with_the_reason(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    created = import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )
    _lost(created, processed=1, total_rows=3, recoveries=MAX_WORK_RECOVERIES)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert imports_recover() == 1

    failed = Import.objects.get(pk=created.pk)
    assert failed.status == Import.Status.FAILED
    assert failed.failure_reason == (
        f"The worker stopped {MAX_WORK_RECOVERIES + 1} times while processing this import "
        "(last after 1 of 3 rows). The rows stored so far stay; check the file, then upload "
        "the rest again."
    )
    assert (failed.lease_token, failed.lease_expires_at) == ("", None)
    assert failed.processed_rows == 1
    assert callbacks == []


def test_a_run_does_not_take_an_import_that_a_live_run_holds() -> None:
    created = import_create(
        file=csv_file(CUSTOMERS_CSV), kind="customers", created_by=None, enqueue=False
    )
    _lost(created, processed=0, lease_seconds=20)

    result = import_process(import_id=created.pk)

    assert (result.status, result.processed_rows, result.lease_token) == ("running", 0, "a" * 32)
    assert not Customer.objects.exists()
    with pytest.raises(ConflictError, match="is still running"):
        import_resume(import_id=created.pk)


def test_a_run_whose_lease_was_taken_stops_before_its_next_chunk() -> None:
    content = "external_id\n" + "".join(f"C-{index}\n" for index in range(6))
    created = import_create(
        file=csv_file(content), kind="customers", created_by=None, enqueue=False
    )

    def swept_meanwhile(current: Import) -> None:
        if current.processed_rows == 2:
            # This worker looked dead (paused too long): the sweep queued the import again.
            Import.objects.filter(pk=current.pk).update(lease_token="", recoveries=1)

    result = import_process(import_id=created.pk, chunk_size=2, on_progress=swept_meanwhile)

    assert (result.status, result.processed_rows, result.created) == ("running", 2, 2)
    assert Customer.objects.count() == 2
    # The run queued by the sweep carries on after the committed chunk.
    done = import_process(import_id=created.pk, chunk_size=2)
    assert (done.status, done.processed_rows, done.created) == ("succeeded", 6, 6)
    assert Customer.objects.count() == 6


def test_the_chunk_size_setting_makes_chunks_smaller_never_larger(settings: Any) -> None:
    seen: list[int] = []
    settings.MINICRM_IMPORT_CHUNK_ROWS = 2
    content = "external_id\n" + "".join(f"C-{index}\n" for index in range(5))

    _process(content, on_progress=lambda current: seen.append(current.processed_rows))

    assert seen == [0, 2, 4, 5]
    settings.MINICRM_IMPORT_CHUNK_ROWS = 10**9
    assert services._chunk_rows() == services.CHUNK_SIZE
