"""The marketer's whole journey in headless Chromium, one continuous session on a fresh install:
create the first admin, import a Shopify store's customers and orders, build a nested segment
from words and by hand, generate an insight offline, send a campaign through the webhook channel
to the vendor simulator and watch its counters settle, then read the dashboard.

Every page on the way is captured light and dark at 1280 and 390 px (artifacts/journeys/) and
checked with axe-core; the test fails on any serious or critical violation, or a phone page that
scrolls sideways (capture.py).
"""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from minicrm.accounts.models import Role, User
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.simulator import VendorSimulator, receipt_outcome
from minicrm.customers.models import Customer, Order
from minicrm.imports.models import Import
from minicrm.insights.models import Insight
from minicrm.segments.models import Segment

from .capture import Journey
from .conftest import VENDOR_FAILURE_PERCENT, VENDOR_SEED

SAMPLES = Path(__file__).resolve().parents[1] / "imports" / "data"
EMAIL = "owner@shop.example"
PASSWORD = "kurta-and-silk-2026"
SEGMENT = "Repeat buyers in Pune or sampled"
# The campaign page polls every 5 s while receipts are outstanding (campaigns.views.poll_seconds).
COUNTERS_WAIT_MS = 20_000
RECEIPTS_WAIT_SECONDS = 30  # an upper bound: the simulator answers as soon as they are posted


def sign_up(page: Page, base: str, journey: Journey) -> None:
    """An empty database: the sign-in page sends the visitor to create the first admin."""
    page.goto(f"{base}/")
    expect(page.get_by_role("heading", name="Create the first admin account")).to_be_visible()
    journey.capture(page, "01-sign-up")
    page.get_by_label("Your name").fill("Priya Nair")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account and sign in").click()
    expect(page.get_by_text("Welcome! Your admin account is ready.")).to_be_visible()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert User.objects.get().role == Role.ADMIN


def upload(page: Page, kind: str, path: Path) -> None:
    page.locator("label.segmented-option", has_text=kind).click()
    page.locator("input[type=file]").set_input_files(path)
    expect(page.locator("[data-drop-label]")).to_contain_text(path.name)
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name=f"Map the columns of {path.name}")).to_be_visible()


def import_store(page: Page, base: str, journey: Journey) -> None:
    """Shopify's customers export, then its orders export (linked to customers by email)."""
    page.get_by_role("link", name="Imports").first.click()
    expect(page.get_by_role("heading", name="No imports yet")).to_be_visible()
    journey.capture(page, "02-import-upload")

    upload(page, "Customers", SAMPLES / "shopify_customers_export.csv")
    expect(page.get_by_text("Looks like a Shopify customers export.")).to_be_visible()
    journey.capture(page, "03-import-mapping")
    page.get_by_role("button", name="Import").click()
    customers = page.locator("[data-import]").first
    expect(customers).to_have_attribute("data-status", "succeeded")
    expect(customers).to_contain_text("3 of 3 rows")
    expect(customers.locator(".stored-count")).to_have_text("3")

    upload(page, "Orders", SAMPLES / "shopify_orders_export.csv")
    expect(page.get_by_text("Looks like a Shopify orders export.")).to_be_visible()
    page.get_by_role("button", name="Import").click()
    orders = page.locator("[data-import]").first
    expect(orders).to_have_attribute("data-status", "succeeded")
    expect(orders).to_contain_text("Done")
    expect(orders.locator(".stored-count")).to_have_text("5")
    # Both finished: the history stops asking for itself.
    expect(page.locator("#import-history")).not_to_have_attribute("hx-trigger", "every 1s")
    page.get_by_role("button", name="Dismiss").click()  # the toast would cover the counts
    journey.capture(page, "04-import-result")
    assert Customer.objects.count() == 3
    assert Order.objects.count() == 5
    assert list(Import.objects.values_list("status", flat=True)) == ["succeeded"] * 2


def build_segment(page: Page, journey: Journey) -> None:
    """Words fill the builder; a nested ANY group is added by hand; the count follows; save."""
    page.get_by_role("link", name="Segments").first.click()
    page.get_by_role("link", name="New segment").first.click()
    count = page.get_by_test_id("audience-count")
    expect(count).to_have_text("3")  # no rules yet: everyone
    page.get_by_label("Describe your audience").fill("customers who ordered at least once")
    page.get_by_role("button", name="Fill the builder").click()
    expect(page.locator("[data-describe-status]")).to_contain_text("1 or more orders")
    builder = page.locator("[data-rule-builder]")
    expect(builder.get_by_label("Field")).to_have_count(1)
    expect(builder.get_by_label("Field")).to_have_value("order_count")
    expect(count).to_have_text("3")  # each has one order

    builder.get_by_role("button", name="Add group").click()
    group = builder.get_by_role("group").nth(1)  # the root group is the first
    expect(group.get_by_role("radio", name="Any")).to_be_checked()
    city = group.get_by_label("Field").first
    city.select_option("city")
    group.get_by_label("City: comparison").select_option("in")
    entry = group.get_by_label("City value: type a value, then Enter or comma")
    entry.fill("Pune")
    entry.press("Enter")
    expect(count).to_have_text("1")  # Asha
    group.get_by_role("button", name="Add condition").click()
    tag = group.get_by_label("Field").nth(1)
    tag.select_option("tags")
    entry = group.get_by_label("Tags value: type a value, then Enter or comma")
    entry.fill("sample")
    entry.press("Enter")
    expect(count).to_have_text("2")  # Asha (Pune) and Meera (tagged sample); not Ravi
    expect(page.get_by_test_id("audience-sample")).to_contain_text("Asha Rao")
    journey.capture(page, "05-segment-builder")

    page.get_by_label("Name").fill(SEGMENT)
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", name=SEGMENT)).to_be_visible()
    segment = Segment.objects.get()
    assert segment.rules == {
        "match": "all",
        "conditions": [
            {"field": "order_count", "operator": "gte", "value": 1},
            {
                "match": "any",
                "conditions": [
                    {"field": "city", "operator": "in", "value": ["Pune"]},
                    {"field": "tags", "operator": "has_any", "value": ["sample"]},
                ],
            },
        ],
    }


def generate_insight(page: Page, journey: Journey) -> None:
    """The segment page's insight panel, answered by the built-in statistical narrator."""
    panel = page.get_by_test_id("insight-panel")
    panel.get_by_role("button", name="Generate insights").click()
    expect(panel).to_have_attribute("data-state", "succeeded")
    headline = page.get_by_test_id("insight-headline")
    expect(headline).to_be_visible()
    insight = Insight.objects.get()
    assert insight.content is not None
    expect(headline).to_have_text(insight.content["headline"])
    journey.capture(page, "06-segment-insight")


def send_campaign(page: Page, vendor: VendorSimulator, journey: Journey) -> Campaign:
    """A campaign to the segment through the webhook channel; the vendor simulator takes the
    messages, then posts its receipts back and the counters settle."""
    page.get_by_role("link", name="Campaigns", exact=True).last.click()
    page.get_by_role("link", name="New campaign for this segment").first.click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    expect(page.get_by_test_id("composer-audience")).to_contain_text("2 people will receive it")
    page.get_by_label("Name").fill("Festive preview")
    page.get_by_label("Webhook (messaging vendor)").check()
    page.get_by_label("Subject").fill("{{ first_name }}, the festive edit is here")
    page.get_by_role("textbox", name="Message").fill(
        "Hi {{ first_name }}, new kurtas and scarves are in. Leave: {{ unsubscribe_url }}"
    )
    expect(page.get_by_test_id("sample-message")).to_have_count(2)
    journey.capture(page, "07-campaign-composer")

    page.get_by_role("button", name="Send…").click()
    dialog = page.locator("#send-dialog")
    expect(dialog).to_contain_text("It will go to 2 people now.")
    dialog.get_by_role("button", name="Send to 2 people").click()
    # The tests' tasks run in place: the messages are with the vendor, the receipts not back.
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent")
    expect(page.locator("[data-stat=sent] .stat-value")).to_have_text("2")
    expect(page.locator("[data-stat=delivered]")).to_contain_text("Waiting for receipts")
    campaign = Campaign.objects.get()
    assert vendor.stats_snapshot()["messages"] == 2

    vendor.receipts_due_now()
    assert vendor.wait_until_idle(RECEIPTS_WAIT_SECONDS)
    outcomes = [
        receipt_outcome(pk, VENDOR_SEED, VENDOR_FAILURE_PERCENT)[0]
        for pk in Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True)
    ]
    # No reload: the page asks for its counters every few seconds while receipts are out.
    expect(page.locator("[data-stat=delivered] .stat-value")).to_have_text(
        str(outcomes.count("delivered")), timeout=COUNTERS_WAIT_MS
    )
    expect(page.locator("[data-stat=failed] .stat-value")).to_have_text(
        str(outcomes.count("failed")), timeout=COUNTERS_WAIT_MS
    )
    journey.capture(page, "08-campaign-page")
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.delivered + campaign.failed) == (0, 2)
    return campaign


def read_the_dashboard(page: Page, journey: Journey, campaign: Campaign) -> None:
    """Today's range holds this session's campaign and segment; the store's orders are from
    October and November 2025, which a custom range brings in."""
    page.get_by_role("link", name="Dashboard").first.click()
    segments = page.get_by_test_id("largest-segments")
    expect(segments.get_by_role("link", name=SEGMENT)).to_be_visible()
    expect(segments.locator("td.num").first).to_have_text("2")
    row = page.get_by_test_id("recent-campaigns").locator(f"[data-campaign='{campaign.pk}']")
    expect(row.get_by_role("link", name="Festive preview")).to_be_visible()
    # Audience, sent, delivered, failed: the receipts are in.
    expect(row.locator("td.num").nth(0)).to_have_text("2")
    expect(row.locator("td.num").nth(2)).to_have_text(str(campaign.delivered))
    expect(row.locator("td.num").nth(3)).to_have_text(str(campaign.failed))

    page.get_by_label("From", exact=True).fill("2025-10-01")
    page.get_by_label("To", exact=True).fill("2025-11-30")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("range-summary")).to_contain_text("1 Oct 2025 \u2013 30 Nov 2025")
    # Completed orders only: #1001 (2,498) + #1003 less its refund (1,600) + #1005 (free).
    expect(page.locator("[data-stat=revenue] .stat-value")).to_have_text("₹4,098")
    expect(page.locator("[data-stat=orders] .stat-value")).to_have_text("3")
    journey.capture(page, "09-dashboard")


def browse_customers(page: Page, journey: Journey) -> None:
    page.get_by_role("link", name="Customers").first.click()
    expect(page.get_by_test_id("customer-total")).to_have_text("3 customers")
    expect(page.locator(".customer-table .results-body tr")).to_have_count(3)
    for name in ("Asha Rao", "Ravi Kumar", "Meera Shah"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    journey.capture(page, "10-customers")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_marketers_whole_journey(
    live_server: object,
    page: Page,
    fresh_install: None,
    vendor: VendorSimulator,
    journey: Journey,
) -> None:
    base = str(live_server.url)  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1280, "height": 800})
    journey.watch(page)
    sign_up(page, base, journey)
    import_store(page, base, journey)
    build_segment(page, journey)
    generate_insight(page, journey)
    campaign = send_campaign(page, vendor, journey)
    read_the_dashboard(page, journey, campaign)
    browse_customers(page, journey)
    journey.assert_clean()
