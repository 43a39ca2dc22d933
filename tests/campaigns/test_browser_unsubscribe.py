"""The unsubscribe link end to end in a real browser, and a later campaign that skips that person.

A marketer composes and sends a campaign (log channel) through the composer; the test opens the
unsubscribe link rendered into one recipient's message in a browser with no session, confirms,
and sees the confirmation; the next campaign to the same segment counts that customer as
excluded (unsubscribed) and writes no delivery for them."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from minicrm.accounts.models import User
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.customers.models import Customer
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory
from tests.web.browser import screenshot, sign_in

PEOPLE = ["Asha", "Ravi", "Meera", "Kabir", "Isha"]
TEMPLATE = "Hi {{ first_name }}, our spring range is in. Leave: "


def compose_and_send(page: Page, base: str, segment_id: int, name: str) -> Campaign:
    """Fill the three steps, send from the confirmation dialog, land on the campaign's page."""
    page.goto(f"{base}/campaigns/new/?segment={segment_id}")
    page.get_by_label("Name").fill(name)
    page.get_by_role("textbox", name="Message").fill(TEMPLATE)
    # The chip inserts the placeholder at the cursor (the end of the message).
    page.locator("[data-placeholder=unsubscribe_url]").click()
    expect(page.get_by_role("textbox", name="Message")).to_have_value(
        TEMPLATE + "{{ unsubscribe_url }}"
    )
    expect(page.get_by_test_id("sample-message").first).to_contain_text("/u/")
    page.get_by_role("button", name="Send…").click()
    dialog = page.locator("#send-dialog")
    expect(dialog).to_be_visible()
    return dialog


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_recipient_unsubscribes_from_the_link_and_the_next_campaign_skips_them(
    live_server: object, page: Page, browser: Browser, marketer: User, settings: object
) -> None:
    base = str(live_server.url)  # type: ignore[attr-defined]
    settings.MINICRM_PUBLIC_URL = base  # type: ignore[attr-defined]
    people = [
        CustomerFactory(first_name=first, email=f"{first.lower()}@example.com", last_name="Rao")
        for first in PEOPLE
    ]
    leaver = people[1]
    segment = segment_create(
        name="Everyone", rules=parse_rules({"match": "all", "conditions": []}), created_by=marketer
    )
    sign_in(page, base, marketer)

    dialog = compose_and_send(page, base, segment.pk, "Spring range")
    expect(dialog).to_contain_text("It will go to 5 people now.")
    screenshot(page, "campaign-send-confirm", full_page=False)
    dialog.get_by_role("button", name="Send to 5 people").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent")
    first = Campaign.objects.get(name="Spring range")
    assert (first.audience, first.sent) == (5, 5)

    # The link as the message carries it, opened by someone who is not signed in.
    body = Delivery.objects.get(campaign=first, customer=leaver).body
    assert body.startswith("Hi Ravi, our spring range is in. Leave: ")
    link = re.search(r"https?://\S+", body).group(0)  # type: ignore[union-attr]
    assert link.startswith(f"{base}/u/")
    stranger = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    stranger.goto(link)
    expect(stranger.get_by_role("heading", name="Unsubscribe?")).to_be_visible()
    expect(stranger.get_by_text("r•••@example.com").first).to_be_visible()
    assert Customer.objects.get(pk=leaver.pk).unsubscribed_at is None  # a GET changes nothing
    stranger.get_by_role("button", name="Unsubscribe r•••@example.com").click()
    expect(stranger.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    screenshot(stranger, "unsubscribe-done")
    stranger.context.close()
    assert Customer.objects.get(pk=leaver.pk).unsubscribed_at is not None

    # The customer's page says so.
    page.goto(f"{base}/customers/{leaver.pk}/")
    expect(page.get_by_test_id("unsubscribed")).to_contain_text("Unsubscribed on")

    # The next campaign to the same segment: the composer counts them out, the launch skips them.
    dialog = compose_and_send(page, base, segment.pk, "Summer range")
    expect(page.locator("[data-excluded=unsubscribed]")).to_contain_text("1")
    expect(dialog).to_contain_text("It will go to 4 people now.")
    dialog.get_by_role("button", name="Send to 4 people").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent")
    expect(page.get_by_test_id("excluded")).to_contain_text("unsubscribed 1")
    second = Campaign.objects.get(name="Summer range")
    assert (second.audience, second.sent, second.excluded["unsubscribed"]) == (4, 4, 1)
    assert not Delivery.objects.filter(campaign=second, customer=leaver).exists()
    assert set(Delivery.objects.filter(campaign=second).values_list("customer_id", flat=True)) == {
        person.pk for person in people if person != leaver
    }
    screenshot(page, "campaign-after-unsubscribe")
