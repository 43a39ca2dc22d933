"""The imports page in a real browser: drop a CSV, watch it finish, read the history."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from minicrm.accounts.models import User
from minicrm.customers.models import Customer, Order
from minicrm.customers.services import customers_bulk_upsert
from minicrm.imports.models import Import
from tests.web.browser import screenshot, sign_in

DATA = Path(__file__).parent / "data"
CUSTOMERS = "External_ID,Email,First_Name,City\n" + "".join(
    f"C-{index},c{index}@example.com,Person {index},Pune\n" for index in range(25)
)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_upload_a_csv_and_see_it_finish(
    live_server: object, page: Page, marketer: User, tmp_path: Path
) -> None:
    path = tmp_path / "shop-customers.csv"
    path.write_text(CUSTOMERS + "C-bad,not-an-email,Broken,Pune\n")
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, marketer)

    page.goto(f"{url}/imports/")
    expect(page.get_by_role("heading", name="No imports yet")).to_be_visible()
    screenshot(page, "imports-empty")
    page.get_by_role("radio", name="Customers").check()
    page.locator("input[type=file]").set_input_files(path)
    expect(page.locator("[data-drop-label]")).to_contain_text("shop-customers.csv")
    page.get_by_role("button", name="Import").click()

    # The mapping page: our own column names are matched whatever their case.
    expect(
        page.get_by_role("heading", name="Map the columns of shop-customers.csv")
    ).to_be_visible()
    expect(page.locator("#column-external_id")).to_have_value("External_ID")
    expect(page.locator("#column-city")).to_have_value("City")
    page.get_by_role("button", name="Import").click()

    row = page.locator("[data-import]").first
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row).to_contain_text("Done with errors")
    expect(row).to_contain_text("26 of 26 rows")
    expect(page.get_by_role("link", name="Error report")).to_be_visible()
    expect(page.locator("[data-row-errors] tbody td")).to_have_text(
        ["27", "Email", "not-an-email", "'not-an-email' is not a valid email address."]
    )
    assert Customer.objects.count() == 25

    with page.expect_download() as download:
        page.get_by_role("link", name="Error report").click()
    report = Path(download.value.path()).read_bytes().decode()
    assert report == (
        "row,column,value,message\r\n"
        "27,Email,not-an-email,'not-an-email' is not a valid email address.\r\n"
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_shopify_orders_export_is_mapped_by_its_preset_and_its_row_errors_shown(
    live_server: object, page: Page, marketer: User, tmp_path: Path
) -> None:
    emails = ["asha.rao@example.com", "ravi.k@example.com", "meera@example.com"]
    customers_bulk_upsert(rows=[{"email": email} for email in emails], key="email")
    lines = (DATA / "shopify_orders_export.csv").read_text().splitlines()
    broken = [
        lines[3].replace(",799.00,,0.00,,", ",7 99,,0.00,,", 1),  # #1002: a Total with a space
        lines[6].replace("meera@example.com", "nobody@example.com"),  # #1005: unknown email
        lines[1].replace("#1001", "#1003"),  # #1003 again, later in the file
    ]
    path = tmp_path / "orders_export.csv"
    path.write_text("\n".join([*lines[:3], *lines[4:6], *broken]) + "\n")
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, marketer)

    page.goto(f"{url}/imports/")
    page.locator("label.segmented-option", has_text="Orders").click()
    page.locator("input[type=file]").set_input_files(path)
    page.get_by_role("button", name="Import").click()

    expect(page.get_by_text("Looks like a Shopify orders export.")).to_be_visible()
    expect(page.locator("#column-amount")).to_have_value("Total")
    expect(page.locator("#column-customer_email")).to_have_value("Email")
    expect(page.locator("input[name=line_items]")).to_be_checked()
    expect(page.locator("input[name=key][value=email]")).to_be_checked()
    screenshot(page, "imports-mapping-shopify")
    page.get_by_role("button", name="Import").click()

    row = page.locator("[data-import]").first
    expect(row).to_contain_text("Done with errors")
    errors = page.locator("[data-row-errors] tbody tr")
    expect(errors).to_have_count(3)
    expect(errors.nth(0).locator("td")).to_have_text(
        ["6", "Total", "7 99", "amount must be a number, got '7 99'."]
    )
    expect(errors.nth(1).locator("td")).to_have_text(
        ["7", "Email", "nobody@example.com", re.compile("^No customer has the email")]
    )
    expect(errors.nth(2).locator("td")).to_have_text(
        ["8", "Name", "#1003", re.compile("^'#1003' already appears in row 4 of this file")]
    )
    page.get_by_role("button", name="Dismiss").click()  # the toast would cover the numbers
    screenshot(page, "imports-row-errors")
    assert sorted(Order.objects.values_list("external_id", flat=True)) == [
        "#1001",
        "#1003",
        "#1004",
    ]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_running_import_moves_without_a_reload(
    live_server: object, page: Page, marketer: User
) -> None:
    running = Import.objects.create(
        kind="orders",
        file="imports/orders.csv",
        original_filename="orders-2025.csv",
        status=Import.Status.RUNNING,
        total_rows=120_000,
        processed_rows=45_000,
        created=44_950,
        error_count=50,
        created_by=marketer,
    )
    Import.objects.create(
        kind="customers",
        file="imports/old.csv",
        original_filename="legacy-export.csv",
        status=Import.Status.FAILED,
        failure_reason=(
            'The file is not UTF-8 encoded (byte 0xE9 on line 3 cannot be read). Save it as "CSV '
            'UTF-8" (in Excel: File → Save As → CSV UTF-8) and upload it again.'
        ),
        created_by=marketer,
    )
    Import.objects.filter(pk=running.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, marketer)

    page.goto(f"{url}/imports/")
    row = page.locator(f"[data-import='{running.pk}']")
    expect(row).to_contain_text("45,000 of 120,000 rows")
    screenshot(page, "imports")

    # The worker commits another chunk; the poller shows it within a second or two.
    Import.objects.filter(pk=running.pk).update(processed_rows=90_000, created=89_900)
    expect(row).to_contain_text("90,000 of 120,000 rows", timeout=5000)
    Import.objects.filter(pk=running.pk).update(
        processed_rows=120_000, created=119_900, status=Import.Status.SUCCEEDED
    )
    expect(row).to_contain_text("Done with errors", timeout=5000)
    # Nothing left to wait for: the poller switched itself off.
    expect(page.locator("#import-history")).not_to_have_attribute("hx-trigger", "every 1s")

    page.get_by_role("button", name="Switch between light and dark").click()
    page.wait_for_timeout(300)  # let the colour transitions finish
    screenshot(page, "imports-dark")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_file_over_the_size_limit_is_refused_under_the_drop_zone(
    live_server: object, page: Page, marketer: User, tmp_path: Path, settings: object
) -> None:
    settings.MINICRM_MAX_IMPORT_BYTES = 200  # type: ignore[attr-defined]
    path = tmp_path / "everything.csv"
    path.write_text(CUSTOMERS)
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, marketer)

    page.goto(f"{url}/imports/")
    page.locator("input[type=file]").set_input_files(path)
    page.get_by_role("button", name="Import").click()

    expect(page.locator(".field-error")).to_contain_text(
        "an import takes at most 200 bytes. Split it into smaller files"
    )
    assert not Import.objects.exists()
    screenshot(page, "imports-too-large")
