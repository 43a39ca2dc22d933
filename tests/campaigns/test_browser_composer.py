"""The composer in a real browser: a template error shown under the editor naming its line, a
suggested message put in the editor with "Use this", and a campaign scheduled for later."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from minicrm.accounts.models import User
from minicrm.campaigns import services
from minicrm.campaigns.models import Campaign
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory
from tests.web.browser import screenshot, sign_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_compose_fix_a_template_use_a_suggestion_and_schedule(
    live_server: object, page: Page, marketer: User, settings: object, monkeypatch: Any
) -> None:
    settings.AI_PROVIDER = "offline"  # type: ignore[attr-defined]
    # The immediate tasks backend of the tests cannot wait: it would launch a scheduled campaign
    # at once. The launch's own tests cover that side; here the launch is recorded, not run.
    launches: list[tuple[int, Any]] = []
    monkeypatch.setattr(
        services, "_enqueue_launch", lambda pk, run_after=None: launches.append((pk, run_after))
    )
    base = str(live_server.url)  # type: ignore[attr-defined]
    for first in ("Asha", "Ravi", "Meera"):
        CustomerFactory(first_name=first, email=f"{first.lower()}@example.com")
    CustomerFactory(first_name="Kabir", marketing_consent=False)
    segment = segment_create(
        name="Everyone", rules=parse_rules({"match": "all", "conditions": []}), created_by=marketer
    )
    sign_in(page, base, marketer)
    page.goto(f"{base}/campaigns/new/?segment={segment.pk}")
    expect(page.get_by_test_id("composer-audience")).to_contain_text("3 people will receive it")
    expect(page.locator("[data-excluded=no_consent]")).to_contain_text("1")

    editor = page.get_by_role("textbox", name="Message")
    editor.fill("Hello\n{{ frist_name }}")
    expect(page.get_by_test_id("template-problem")).to_contain_text(
        "template, line 2: unknown placeholder 'frist_name'"
    )

    page.get_by_role("button", name="Suggest messages").first.click()
    dialog = page.locator("#suggest-dialog")
    dialog.get_by_label("What should the message achieve?").fill("Win back quiet customers")
    dialog.get_by_role("button", name="Suggest messages").click()
    use = dialog.get_by_role("button", name="Use this").first
    expect(use).to_be_visible()
    suggestion = use.get_attribute("data-use-message")
    use.click()
    expect(dialog).not_to_be_visible()
    expect(editor).to_have_value(suggestion or "")
    expect(page.get_by_test_id("template-problem")).to_have_count(0)
    expect(page.get_by_test_id("sample-message")).to_have_count(3)

    page.get_by_label("Name").fill("Quiet customers")
    page.get_by_label("Schedule").check()
    when = timezone.localtime() + timedelta(days=2)
    page.get_by_label("Send at").fill(when.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Schedule…").click()
    confirm = page.locator("#send-dialog")
    expect(confirm).to_contain_text("It will go to 3 people on")
    screenshot(page, "campaign-schedule-confirm", full_page=False)
    confirm.get_by_role("button", name="Schedule").click()

    expect(page.get_by_test_id("campaign-status")).to_have_text("Scheduled")
    campaign = Campaign.objects.get(name="Quiet customers")
    assert campaign.status == "scheduled"
    assert campaign.template == suggestion
    assert campaign.scheduled_at == when.replace(second=0, microsecond=0)
    assert launches == [(campaign.pk, campaign.scheduled_at)]
