from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from minicrm.customers.models import Customer
from minicrm.imports.models import Import

pytestmark = pytest.mark.django_db


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_csv", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_imports_with_a_progress_bar_and_a_summary(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    rows = "".join(f"C-{index},c{index}@example.com\n" for index in range(12))
    path.write_text("external_id,email\n" + rows + "C-bad,nope\n")

    out, err = _run(str(path), "--kind", "customers")

    assert Customer.objects.count() == 12
    assert "customers.csv: 100%" in err
    assert "13/13" in err
    assert out.splitlines() == [
        f"Import {Import.objects.get().pk}: 13 rows read, 12 created, 0 updated, 0 unchanged, "
        "1 rows failed (1 errors).",
        "  row 14: email: 'nope' is not a valid email address.",
        "Finished with row errors.",
    ]


def test_the_command_lists_only_the_first_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("external_id,email\n" + "".join(f"C-{i},bad\n" for i in range(15)))

    out, _err = _run(str(path), "--kind", "customers")

    assert out.count("is not a valid email address") == 10
    assert "  … and 5 more errors." in out


def test_a_missing_file_exits_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"No such file: .*nope\.csv"):
        _run(str(tmp_path / "nope.csv"), "--kind", "customers")


def test_a_bad_kind_exits_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("external_id\nC-1\n")

    with pytest.raises(CommandError, match="invalid choice: 'products'"):
        _run(str(path), "--kind", "products")


def test_missing_columns_exit_with_a_message_and_store_nothing(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("external_id,amount\nO-1,5\n")

    with pytest.raises(CommandError) as caught:
        _run(str(path), "--kind", "orders")

    assert str(caught.value).startswith(
        'Missing required columns: "customer_external_id", "ordered_at".'
    )
    assert not Import.objects.exists()


def test_a_file_that_fails_while_processing_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "empty-rows.csv"
    path.write_text("external_id\n\n")

    with pytest.raises(CommandError, match=r"failed: The file has a header row but no data rows"):
        _run(str(path), "--kind", "customers")

    assert Import.objects.get().status == Import.Status.FAILED
