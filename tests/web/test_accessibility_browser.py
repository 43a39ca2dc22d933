"""Every page a marketer meets passes axe-core's serious and critical checks, light and dark."""

import json

import pytest
from django.test import Client
from playwright.sync_api import Page

from minicrm.accounts.models import User
from tests.web.axe import axe_violations
from tests.web.browser import screenshot, seed_base, sign_in

PAGES = [
    ("dashboard", "/"),
    ("customers", "/customers/"),
    ("segments", "/segments/"),
    ("segment-new", "/segments/new/"),
    ("campaigns", "/campaigns/"),
    ("campaign-new", "/campaigns/new/"),
    ("imports", "/imports/"),
    ("settings", "/settings/"),
    ("audit", "/settings/audit/"),
    ("rates", "/customers/rates/"),
]


def _seed(admin: User) -> dict[str, str]:
    """A small shop with one segment and one draft campaign; the pages that need their ids."""
    people = seed_base(40)
    client = Client()
    client.force_login(admin)
    spend = {"field": "total_spend", "operator": "gt", "value": 1000}
    rules = {"match": "all", "conditions": [spend]}
    segment = client.post(
        "/api/v1/segments",
        json.dumps({"name": "Big spenders", "rules": rules}),
        content_type="application/json",
    )
    assert segment.status_code == 201, segment.content
    segment_id = segment.json()["id"]
    campaign = client.post(
        "/api/v1/campaigns",
        json.dumps(
            {"name": "Welcome back", "segment_id": segment_id, "template": "Hi {{ first_name }}"}
        ),
        content_type="application/json",
    )
    assert campaign.status_code == 201, campaign.content
    return {
        "customer": f"/customers/{people[0].pk}/",
        "segment": f"/segments/{segment_id}/",
        "segment-edit": f"/segments/{segment_id}/edit/",
        "campaign": f"/campaigns/{campaign.json()['id']}/",
    }


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_have_no_serious_accessibility_violations(
    live_server: object, page: Page, admin: User
) -> None:
    """One shop, one browser page: every page in the light theme, then every page again in the
    dark one (the theme is read from localStorage on each load)."""
    base = live_server.url  # type: ignore[attr-defined]
    pages = PAGES + list(_seed(admin).items())
    sign_in(page, base, admin)
    page.goto(f"{base}/")
    found = {}
    for theme in ("light", "dark"):
        page.evaluate(f"localStorage.setItem('minicrm-theme', '{theme}')")
        for name, path in pages:
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.dataset.theme") == theme
            screenshot(page, f"axe-{name}-{theme}")
            violations = axe_violations(page)
            if violations:
                found[f"{path} ({theme})"] = violations
    assert not found, json.dumps(found, indent=1)
