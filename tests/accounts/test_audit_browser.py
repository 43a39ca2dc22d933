"""Browser test: an admin goes from Settings to the audit page, filters it and sees the result;
a screenshot at 1280 wide lands in var/screenshots."""

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from minicrm.accounts.models import AuditEvent, User
from minicrm.accounts.services import audit_record
from tests.factories import UserFactory
from tests.web.browser import sign_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_an_admin_filters_the_audit_log(live_server: Any, page: Page, admin: User) -> None:
    mia = UserFactory(email="mia@example.com")
    audit_record(action=AuditEvent.Action.SIGN_IN, actor=mia, target=mia.email)
    audit_record(
        action=AuditEvent.Action.SEGMENT_CHANGED,
        actor=mia,
        target="Segment “VIP buyers” (#12)",
        details={"changed": ["name", "rules"], "old_name": "VIP"},
        ip_address="203.0.113.7",
    )
    audit_record(
        action=AuditEvent.Action.IMPORT_STARTED,
        actor=mia,
        target="Import “shopify-orders.csv” (#4)",
        details={"kind": "orders", "file": "shopify-orders.csv", "bytes": 2_400_000},
        ip_address="203.0.113.7",
    )
    audit_record(
        action=AuditEvent.Action.SIGN_IN_FAILED,
        target="someone@example.com",
        details={"reason": "bad_password"},
        ip_address="198.51.100.23",
    )
    sign_in(page, live_server.url, admin)

    page.goto(f"{live_server.url}/settings/")
    page.get_by_role("link", name="View all").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(4)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "audit-log.png", full_page=True)

    page.get_by_label("Who").select_option(label="mia@example.com")
    page.get_by_role("button", name="Filter").click()

    expect(rows).to_have_count(3)
    assert f"actor={mia.pk}" in page.url
    expect(rows.first).to_contain_text("Import started")
    expect(rows.first).to_contain_text("kind: orders · file: shopify-orders.csv · size: 2.3")
    page.screenshot(path=SCREENSHOTS / "audit-log-filtered.png", full_page=True)
