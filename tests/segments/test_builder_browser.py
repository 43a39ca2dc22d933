"""The rule builder in a real browser: build a nested rule, watch the count, save, open the page."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Locator, Page, expect

from minicrm.accounts.models import User
from minicrm.segments.models import Segment

from .test_views import customer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PEOPLE = [
    # first name, city, total spend, orders
    ("Asha", "Mumbai", "9000.00", 9),
    ("Ravi", "Pune", "4000.00", 2),
    ("Meera", "Delhi", "2500.00", 1),
    ("Kabir", "Chennai", "3000.00", 6),
    ("Isha", "Chennai", "1800.00", 1),
    ("Dev", "Pune", "300.00", 1),
    ("Nila", "Mumbai", "0.00", 0),
]


@pytest.fixture
def customers(db: None) -> None:
    for first_name, city, spend, orders in PEOPLE:
        customer(first_name, spend=spend, orders=orders, city=city, last_name="Rao")


@dataclass
class Builder:
    base: str
    count: Locator
    root: Locator


@pytest.fixture
def builder(live_server: object, page: Page, marketer: User, customers: None) -> Builder:
    """The new-segment page, open for a marketer, with its first count in."""
    base = sign_in(page, live_server, marketer)
    page.goto(f"{base}/segments/new/")
    count = page.get_by_test_id("audience-count")
    expect(count).to_have_text("7")  # an empty group is everyone
    return Builder(base, count, page.locator("[data-rule-builder] > .rb-group"))


def sign_in(page: Page, live_server: object, user: User) -> str:
    client = Client()
    client.force_login(user)
    base = live_server.url  # type: ignore[attr-defined]
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}]
    )
    return str(base)


def condition_rows(group: Locator) -> Locator:
    return group.locator(":scope > .rb-items > .rb-condition")


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Transitions finish first, so a theme switch is captured done, not halfway.
    page.screenshot(path=SCREENSHOTS / name, full_page=full_page, animations="disabled")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_build_a_nested_rule_watch_the_count_save_and_open_the_segment(
    page: Page, builder: Builder
) -> None:
    base, count, root = builder.base, builder.count, builder.root
    root.locator(":scope > .rb-group-actions .rb-add-condition").click()
    first = condition_rows(root).nth(0)
    expect(first.locator(".rb-field")).to_be_focused()
    expect(first.locator(".rb-field")).to_have_value("total_spend")
    first.locator(".rb-operator").select_option("gte")
    first.get_by_label("Total spend value").fill("2000")
    expect(count).to_have_text("4")  # Asha, Ravi, Meera, Kabir

    root.locator(":scope > .rb-group-actions .rb-add-group").click()
    nested = root.locator(".rb-group[data-depth='2']")
    expect(nested.locator(".rb-match input[value='any']")).to_be_checked()
    city = condition_rows(nested).nth(0)
    city.locator(".rb-field").select_option("city")
    city.locator(".rb-operator").select_option("in")
    chips = city.locator(".rb-chip-entry")
    chips.fill("Pune")
    chips.press("Enter")
    chips.fill("delhi,")
    expect(city.locator(".rb-chip")).to_have_count(2)
    expect(chips).to_be_focused()
    nested.locator(":scope > .rb-group-actions .rb-add-condition").click()
    orders = condition_rows(nested).nth(1)
    orders.locator(".rb-field").select_option("order_count")
    orders.locator(".rb-operator").select_option("gte")
    orders.get_by_label("Number of orders value").fill("5")
    expect(count).to_have_text("4")  # Ravi, Meera (city); Asha, Kabir (orders)
    orders.get_by_label("Number of orders value").fill("7")
    expect(count).to_have_text("3")  # Kabir drops out
    expect(page.locator(".seg-funnel-row")).to_have_count(2)
    expect(page.get_by_test_id("audience-sample")).to_contain_text("Asha Rao")
    shot(page, "segment-builder-nested.png")

    page.emulate_media(color_scheme="dark")
    shot(page, "segment-builder-dark.png")
    page.emulate_media(color_scheme="light")

    page.get_by_label("Name").fill("Loyal or local")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", name="Loyal or local")).to_be_visible()
    segment = Segment.objects.get()
    assert segment.rules == {
        "match": "all",
        "conditions": [
            {"field": "total_spend", "operator": "gte", "value": 2000},
            {
                "match": "any",
                "conditions": [
                    {"field": "city", "operator": "in", "value": ["Pune", "delhi"]},
                    {"field": "order_count", "operator": "gte", "value": 7},
                ],
            },
        ],
    }
    expect(page.get_by_test_id("segment-rules")).to_contain_text("Total spend at least ₹2,000")
    # The insights panel loads into the overview by itself (htmx, on load).
    expect(
        page.locator("#segment-insights").get_by_role("button", name="Generate insights")
    ).to_be_visible()
    shot(page, "segment-page.png")
    page.emulate_media(color_scheme="dark")
    shot(page, "segment-page-dark.png")
    page.emulate_media(color_scheme="light")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete “Loyal or local”?")
    expect(dialog).to_be_visible()
    shot(page, "segment-delete-dialog.png", full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_role("link", name="Members").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute(
        "href", f"/api/v1/segments/{segment.pk}/export"
    )
    shot(page, "segment-members.png")

    page.goto(f"{base}/segments/")
    expect(page.get_by_role("link", name="Loyal or local")).to_be_visible()
    shot(page, "segment-list.png")

    # The edit page rebuilds the same tree from the saved rules, also on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/segments/{segment.pk}/edit/")
    expect(count).to_have_text("3")
    nested = page.locator("[data-rule-builder] .rb-group[data-depth='2']")
    expect(nested.locator(".rb-chip")).to_have_text(["Pune", "delhi"])
    expect(nested.locator(".rb-match input[value='any']")).to_be_checked()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "segment-builder-phone.png")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_errors_sit_under_their_row_and_removing_a_row_keeps_focus(
    page: Page, builder: Builder
) -> None:
    count, root = builder.count, builder.root
    add = root.locator(":scope > .rb-group-actions .rb-add-condition")
    add.click()
    add.click()
    second = condition_rows(root).nth(1)
    # A new, untouched row does not open in red: it is left out of the count, which stays.
    expect(second.locator(".rb-note")).to_contain_text("Not counted yet")
    expect(count).to_have_text("7")
    expect(second.locator(".rb-error")).to_be_hidden()
    value = second.get_by_label("Total spend value")
    value.fill("5")
    value.fill("-1")
    expect(second.locator(".rb-error")).to_have_text("Must be 0 or more")
    expect(value).to_have_attribute("aria-invalid", "true")
    expect(count).to_have_text("—")
    expect(condition_rows(root).nth(0).locator(".rb-error")).to_be_hidden()
    shot(page, "segment-builder-errors.png", full_page=False)

    second.get_by_role("button", name="Remove this condition").click()
    expect(condition_rows(root)).to_have_count(1)
    # The keyboard lands on the row before it rather than back at the top of the page.
    expect(condition_rows(root).nth(0).locator(".rb-field")).to_be_focused()
    condition_rows(root).nth(0).get_by_label("Total spend value").fill("2500")
    expect(count).to_have_text("3")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_describe_your_audience_fills_the_builder_and_never_saves(
    live_server: object, page: Page, marketer: User, customers: None
) -> None:
    base = sign_in(page, live_server, marketer)
    answers = iter(
        [
            (404, {"detail": "Not Found"}),
            (
                200,
                {
                    "rules": {
                        "match": "all",
                        "conditions": [
                            {"field": "total_spend", "operator": "gt", "value": 2000},
                            {"field": "tags", "operator": "has_any", "value": ["vip"]},
                        ],
                    },
                    "explanation": "Customers who spent over ₹2,000 and are tagged vip.",
                },
            ),
        ]
    )
    sent: list[dict[str, str]] = []

    def answer(route: object) -> None:
        status, body = next(answers)
        request = route.request  # type: ignore[attr-defined]
        sent.append({"body": request.post_data, "csrf": request.headers.get("x-csrftoken", "")})
        route.fulfill(  # type: ignore[attr-defined]
            status=status, content_type="application/json", body=json.dumps(body)
        )

    page.route("**/api/v1/segments/parse", answer)
    page.goto(f"{base}/segments/new/")
    describe = page.get_by_label("Describe your audience")
    describe.fill("big spenders tagged vip")
    describe.press("Enter")
    status = page.locator("[data-describe-status]")
    expect(status).to_contain_text("not available on this server yet")

    page.get_by_role("button", name="Fill the builder").click()
    expect(status).to_contain_text("tagged vip")
    root = page.locator("[data-rule-builder] > .rb-group")
    expect(condition_rows(root)).to_have_count(2)
    expect(condition_rows(root).nth(1).locator(".rb-chip")).to_have_text(["vip"])
    expect(page.get_by_test_id("audience-count")).to_have_text("0")
    shot(page, "segment-builder-described.png", full_page=False)
    assert json.loads(sent[0]["body"]) == {"text": "big spenders tagged vip"}
    assert sent[0]["csrf"] == page.locator('meta[name="csrf-token"]').get_attribute("content")

    status.get_by_role("button", name="Undo").click()
    expect(condition_rows(root)).to_have_count(0)
    expect(page.get_by_test_id("audience-count")).to_have_text("7")
    assert Segment.objects.count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_describe_with_the_built_in_parser_goes_through_the_session_and_csrf(
    page: Page, builder: Builder, settings: object
) -> None:
    settings.AI_PROVIDER = "offline"  # type: ignore[attr-defined]
    page.get_by_label("Describe your audience").fill("customers who spent over 2000")
    page.get_by_role("button", name="Fill the builder").click()
    expect(page.locator("[data-describe-status]")).to_contain_text("Total spend over ₹2,000")
    first = condition_rows(builder.root).nth(0)
    expect(first.locator(".rb-field")).to_have_value("total_spend")
    expect(first.locator(".rb-operator")).to_have_value("gt")
    expect(first.get_by_label("Total spend value")).to_have_value("2000")
    expect(builder.count).to_have_text("4")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_custom_attributes_and_consent_in_the_builder(
    live_server: object, page: Page, marketer: User
) -> None:
    for name, plan, score, consent in [
        ("Asha", "gold", 7, True),
        ("Ravi", "silver", 2.5, True),
        ("Meera", "Gold", 9, False),
    ]:
        person = customer(name, spend="100.00", last_name="Rao")
        person.attributes = {"plan": plan, "score": score}
        person.marketing_consent = consent
        person.save()
    customer("Nila", spend="0.00", orders=0, last_name="Rao")
    base = sign_in(page, live_server, marketer)
    page.goto(f"{base}/segments/new/")
    count = page.get_by_test_id("audience-count")
    expect(count).to_have_text("4")
    root = page.locator("[data-rule-builder] > .rb-group")
    root.locator(":scope > .rb-group-actions .rb-add-condition").click()
    row = condition_rows(root).nth(0)
    field = row.locator(".rb-field")
    expect(field.locator("optgroup[label='Custom attributes'] option")).to_have_count(2)
    expect(field.locator("option[value='attributes.plan']")).to_have_text(
        "plan (e.g. Gold, silver, gold)"
    )
    field.select_option("attributes.plan")
    row.locator(".rb-operator").select_option("ne")
    row.locator("input.rb-input").fill("GOLD")
    expect(count).to_have_text("2")  # Ravi, and Nila who has no plan
    field.select_option("attributes.score")
    row.locator(".rb-operator").select_option("gt")
    row.locator("input.rb-input").fill("3")
    expect(count).to_have_text("2")  # Asha 7, Meera 9
    root.locator(":scope > .rb-group-actions .rb-add-condition").click()
    consent = condition_rows(root).nth(1)
    consent.locator(".rb-field").select_option("marketing_consent")
    consent.locator(".rb-operator").select_option("is_true")
    expect(count).to_have_text("1")  # Asha
    expect(page.locator(".seg-funnel-row").nth(0)).to_contain_text("Score over 3")
    expect(page.locator(".seg-funnel-row").nth(1)).to_contain_text("Gave marketing consent")
