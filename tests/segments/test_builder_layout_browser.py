"""The rule builder in Chromium: unfinished rows keep the count, rows on one line at 1280 and
stacked on a phone with the count in view, Save without scrolling, suggestions, and "Describe
your audience" keeping what it used apart from what it could not."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import Locator, Page, expect

from minicrm.accounts.models import User
from minicrm.customers.models import Customer, CustomerTag
from minicrm.segments.models import Segment
from tests.web.axe import axe_violations

from .test_builder_browser import sign_in
from .test_views import customer

# Screenshots for people to look at (git-ignored); MINICRM_SHOTS puts them elsewhere.
SHOTS = Path(
    os.environ.get("MINICRM_SHOTS", Path(__file__).resolve().parents[2] / "artifacts" / "builder")
)
PEOPLE = [
    # first name, city, total spend, orders, tags
    ("Asha", "Mumbai", "9000.00", 9, ["vip"]),
    ("Ravi", "Pune", "4000.00", 2, ["newsletter"]),
    ("Meera", "Delhi", "2500.00", 1, []),
    ("Kabir", "Chennai", "3000.00", 6, ["vip", "wholesale"]),
    ("Isha", "Chennai", "1800.00", 1, []),
    ("Dev", "Pune", "300.00", 1, []),
    ("Nila", "Mumbai", "0.00", 0, []),
]


@pytest.fixture(autouse=True)
def fresh_suggestions() -> Iterator[None]:
    # The city and tag suggestions are cached for minutes; each test has its own customers.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def customers(db: None) -> list[Customer]:
    people = []
    for first_name, city, spend, orders, tags in PEOPLE:
        person = customer(first_name, spend=spend, orders=orders, city=city, last_name="Rao")
        CustomerTag.objects.bulk_create(CustomerTag(customer=person, name=tag) for tag in tags)
        people.append(person)
    return people


def open_builder(page: Page, live_server: object, user: User, path: str = "/segments/new/") -> str:
    base = sign_in(page, live_server, user)
    page.goto(f"{base}{path}")
    expect(page.get_by_test_id("audience-count")).to_have_text("7")
    return base


def top_group(page: Page) -> Locator:
    return page.locator("[data-rule-builder] > .rb-group")


def rows(group: Locator) -> Locator:
    return group.locator(":scope > .rb-items > .rb-condition")


def add_condition(group: Locator) -> Locator:
    index = rows(group).count()
    group.locator(":scope > .rb-group-actions .rb-add-condition").click()
    return rows(group).nth(index)


def shot(page: Page, name: str, *, full_page: bool = True, clip: Any = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / name, full_page=full_page, animations="disabled", clip=clip)


def in_both_themes(
    page: Page, name: str, *, axe: bool, full_page: bool = True, clip: Any = None
) -> None:
    """Capture `name`_light/_dark.png and, with `axe`, find nothing serious in either theme;
    the page is left light."""
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)  # type: ignore[arg-type]
        shot(page, f"{name}_{theme}.png", full_page=full_page, clip=clip)
        if axe:
            assert axe_violations(page) == [], theme
    page.emulate_media(color_scheme="light")


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return found


def label_fits(select: Locator) -> bool:
    """Whether the chosen option's label fits inside the select, arrow and padding aside."""
    return bool(
        select.evaluate(
            """(node) => {
                const style = getComputedStyle(node);
                const probe = document.createElement("span");
                probe.style.font = style.font;
                probe.style.whiteSpace = "pre";
                probe.style.position = "absolute";
                probe.textContent = node.selectedOptions[0].textContent;
                document.body.append(probe);
                const needed = probe.getBoundingClientRect().width;
                probe.remove();
                const inner = node.clientWidth - parseFloat(style.paddingLeft) - 16;
                return needed <= inner && node.scrollWidth <= node.clientWidth;
            }"""
        )
    )


def build_nested_with_an_unfinished_row(page: Page) -> tuple[Locator, Locator]:
    """Spend ≥ 2000, and any of (last order not in the last N days, city ...): the city row left
    unfinished. Returns the nested group and the unfinished row."""
    root = top_group(page)
    spend = add_condition(root)
    spend.locator(".rb-operator").select_option("gte")
    spend.get_by_label("Total spend value").fill("2000")
    expect(page.get_by_test_id("audience-count")).to_have_text("4")
    root.locator(":scope > .rb-group-actions .rb-add-group").click()
    nested = root.locator(".rb-group[data-depth='2']")
    lapsed = rows(nested).nth(0)
    lapsed.locator(".rb-field").select_option("last_order_date")
    lapsed.locator(".rb-operator").select_option("not_in_last_days")
    lapsed.locator("input.rb-input").fill("1")
    # Every big spender last ordered 3 days ago; the funnel's two steps show the group counted.
    expect(page.locator(".seg-funnel-row")).to_have_count(2)
    expect(page.get_by_test_id("audience-count")).to_have_text("4")
    city = add_condition(nested)
    city.locator(".rb-field").select_option("city")
    return nested, city


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_unfinished_row_keeps_the_count_and_is_marked_not_counted(
    live_server: object, page: Page, marketer: User, customers: list[Customer]
) -> None:
    open_builder(page, live_server, marketer)
    count = page.get_by_test_id("audience-count")
    root = top_group(page)
    first = add_condition(root)
    first.get_by_label("Total spend value").fill("2000")
    expect(count).to_have_text("4")

    with page.expect_response("**/segments/preview/") as answered:
        second = add_condition(root)
    assert answered.value.ok
    # The count is the finished row's, and the new row says it is not counted yet.
    expect(count).to_have_text("4")
    expect(second.locator(".rb-note")).to_contain_text("Not counted yet")
    expect(second.locator(".rb-error")).to_be_hidden()
    expect(page.get_by_test_id("audience-pending")).to_have_text(
        "1 unfinished row is not counted yet."
    )
    expect(first.locator(".rb-note")).to_be_hidden()

    # A wrong value (not an empty one) is highlighted with its message.
    second.get_by_label("Total spend value").fill("-5")
    expect(second.locator(".rb-error")).to_have_text("Must be 0 or more")
    expect(second.get_by_label("Total spend value")).to_have_attribute("aria-invalid", "true")
    expect(count).to_have_text("—")
    second.get_by_label("Total spend value").fill("5000")
    expect(count).to_have_text("1")  # Asha
    expect(second.locator(".rb-note")).to_be_hidden()

    # Saving with an unfinished row is refused, naming it; nothing is saved.
    third = add_condition(root)
    expect(third.locator(".rb-note")).to_contain_text("Not counted yet")
    page.get_by_label("Name", exact=True).fill("Half done")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_test_id("rules-form-error")).to_have_text(
        "Row 3 (Total spend) is not finished: give it a value or remove it."
    )
    expect(rows(top_group(page)).nth(2).locator(".rb-error")).to_have_text("A value is required")
    assert Segment.objects.count() == 0
    shot(page, "builder_1280_save_refused.png", full_page=False)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_rows_sit_on_one_line_at_1280_and_save_needs_no_scrolling(
    live_server: object, page: Page, marketer: User, customers: list[Customer]
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    open_builder(page, live_server, marketer)
    nested, city = build_nested_with_an_unfinished_row(page)
    expect(page.get_by_test_id("audience-count")).to_have_text("4")
    expect(city.locator(".rb-note")).to_contain_text("Not counted yet")

    for row in [rows(top_group(page)).nth(0), rows(nested).nth(0), city]:
        field, operator = row.locator(".rb-field"), row.locator(".rb-operator")
        value = row.locator(".rb-value input").first
        tops = {round(box(part)["y"]) for part in (field, operator, value)}
        assert len(tops) == 1, tops
        assert label_fits(operator)
    lapsed = rows(nested).nth(0).locator(".rb-operator")
    expect(lapsed.locator("option:checked")).to_have_text("is not in the last N days")
    assert label_fits(lapsed)
    # Nesting costs little width: the nested row is at most 40 px narrower than the top one.
    outer = box(rows(top_group(page)).nth(0).locator(".rb-row"))["width"]
    assert outer - box(rows(nested).nth(0).locator(".rb-row"))["width"] <= 40

    page.evaluate("window.scrollTo(0, 0)")
    save = box(page.get_by_role("button", name="Save segment"))
    assert save["y"] >= 0
    assert save["y"] + save["height"] <= 800, save
    # The not-counted badge, the nested group and the sticky panel pass axe in both themes.
    in_both_themes(page, "builder_1280", axe=True)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_on_a_phone_rows_stack_and_the_count_stays_in_view(
    live_server: object, page: Page, marketer: User, customers: list[Customer]
) -> None:
    open_builder(page, live_server, marketer)
    nested, city = build_nested_with_an_unfinished_row(page)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    row = rows(nested).nth(0)
    field, operator = box(row.locator(".rb-field")), box(row.locator(".rb-operator"))
    value = box(row.locator(".rb-value"))
    assert field["y"] < operator["y"] < value["y"]
    assert abs(operator["width"] - value["width"]) <= 1
    assert operator["width"] >= box(row.locator(".rb-row"))["width"] - 1
    remove = row.get_by_role("button", name="Remove this condition")
    remove.scroll_into_view_if_needed()
    assert box(remove)["x"] + box(remove)["width"] <= 390

    # Scrolled to the rules, the count is still on screen, in a bar along the bottom.
    city.scroll_into_view_if_needed()
    count = page.get_by_test_id("audience-count")
    expect(count).to_have_text("4")
    expect(count).to_be_in_viewport()
    bar = box(page.locator("#audience-count"))
    assert bar["y"] + bar["height"] <= 844
    assert bar["y"] > 700
    # The subtitle reads right in both layouts (the audience is not "on the right" here).
    expect(page.locator("main")).to_contain_text("The audience count follows every change.")
    expect(page.locator("main")).not_to_contain_text("on the right")
    # What the screen shows: fixed bars are where they are, not spread over a full page.
    in_both_themes(page, "builder_390", axe=False, full_page=False)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_city_and_tag_inputs_suggest_values_and_an_unknown_tag_is_flagged(
    live_server: object, page: Page, marketer: User, customers: list[Customer]
) -> None:
    open_builder(page, live_server, marketer)
    root = top_group(page)
    city = add_condition(root)
    city.locator(".rb-field").select_option("city")
    value = city.locator("input.rb-input")
    expect(value).to_have_attribute("list", "rb-suggest-city")
    options = page.locator("#rb-suggest-city option")
    # Most common first: Chennai, Mumbai and Pune have two customers each, Delhi one.
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == [
        "Chennai",
        "Mumbai",
        "Pune",
        "Delhi",
    ]

    tags = add_condition(root)
    tags.locator(".rb-field").select_option("tags")
    entry = tags.locator(".rb-chip-entry")
    expect(entry).to_have_attribute("list", "rb-suggest-tags")
    expect(page.locator("#rb-suggest-tags option")).to_have_count(3)
    entry.fill("vip")
    entry.press("Enter")
    expect(tags.locator(".rb-unknown-tag")).to_have_count(0)
    entry.fill("gold")
    entry.press("Enter")
    expect(tags.locator(".rb-unknown-tag")).to_have_text("No customer has this tag yet: gold")
    city.locator("input.rb-input").fill("Pune")
    # Flagged, never blocking: the count goes on (vip or gold, in Pune: nobody).
    expect(page.get_by_test_id("audience-count")).to_have_text("0")
    value.fill("Mumbai")
    expect(page.get_by_test_id("audience-count")).to_have_text("1")  # Asha


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_describe_shows_what_it_used_and_apart_what_it_could_not(
    live_server: object, page: Page, marketer: User, customers: list[Customer], settings: object
) -> None:
    settings.AI_PROVIDER = "offline"  # type: ignore[attr-defined]
    open_builder(page, live_server, marketer)
    status = page.locator("[data-describe-status]")
    describe = page.get_by_label("Describe your audience")

    describe.fill("loyal fans of shoes")
    describe.press("Enter")
    expect(status.locator(".rb-describe-error")).to_contain_text("I could not turn")
    expect(rows(top_group(page))).to_have_count(0)
    expect(status.locator(".rb-describe-success")).to_have_count(0)

    describe.fill("from Pune and love shoes")
    describe.press("Enter")
    understood = status.locator(".rb-describe-success")
    unused = status.locator(".rb-describe-warning")
    expect(understood).to_contain_text('Understood as: City is "Pune".')
    expect(understood).not_to_contain_text("love shoes")
    expect(unused.get_by_test_id("describe-unused").locator("li")).to_have_text(["love shoes"])
    expect(rows(top_group(page))).to_have_count(1)
    expect(page.get_by_test_id("audience-count")).to_have_text("2")
    in_both_themes(
        page,
        "builder_describe",
        axe=True,
        full_page=False,
        clip={"x": 0, "y": 0, "width": 1280, "height": 420},
    )
