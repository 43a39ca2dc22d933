"""Every main page under the real Content-Security-Policy in Chromium: no violation at all
(an inline style or script the policy refuses would be silently missing for users)."""

from pathlib import Path

import pytest
from django.core.cache import cache
from playwright.sync_api import ConsoleMessage, Page, expect

from minicrm.accounts.models import User
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create

from .browser import seed_base, sign_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

# Collects every violation the page reports, from the first script on.
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


def _watch(page: Page) -> list[str]:
    messages: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            messages.append(message.text)

    page.on("console", on_console)
    page.add_init_script(LISTEN)
    return messages


def _visit(page: Page, url: str, console: list[str]) -> list[str]:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # htmx fragments that load on "load" settle
    found = [f"{url}: {text}" for text in page.evaluate("window.__cspViolations")]
    found += [f"{url}: {text}" for text in console]
    console.clear()
    return found


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_main_pages_raise_no_csp_violation(live_server: object, page: Page, admin: User) -> None:
    cache.clear()
    people = seed_base()
    segment = segment_create(
        name="Big spenders",
        rules=parse_rules(
            {
                "match": "all",
                "conditions": [{"field": "total_spend", "operator": "gte", "value": 2000}],
            }
        ),
        created_by=admin,
    )
    url = live_server.url  # type: ignore[attr-defined]
    console = _watch(page)
    sign_in(page, url, admin)
    pages = {
        "dashboard": "/",
        "customers": "/customers/",
        "customer": f"/customers/{people[0].pk}/",
        "segments": "/segments/",
        "segment-builder": "/segments/new/",
        "segment": f"/segments/{segment.pk}/",
        "imports": "/imports/",
        "campaigns": "/campaigns/",
        "campaign-composer": "/campaigns/new/",
        "settings": "/settings/",
        "api-docs": "/api/v1/docs",
    }
    violations: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in pages.items():
        violations += _visit(page, url + path, console)
        page.screenshot(path=SCREENSHOTS / f"csp-{name}.png", full_page=True)

    # The behaviours that moved out of inline handlers still work.
    page.goto(f"{url}/")
    expect(page.locator(".chart-frame canvas").first).to_be_visible()
    page.wait_for_function("Chart.getChart('revenue-chart') !== undefined")

    assert violations == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_sign_in_page_raises_no_csp_violation(
    live_server: object, page: Page, admin: User
) -> None:
    url = live_server.url  # type: ignore[attr-defined]
    console = _watch(page)

    violations = _visit(page, f"{url}/sign-in/", console)
    page.screenshot(path=SCREENSHOTS / "csp-sign-in.png", full_page=True)

    assert violations == []
    # The bigger brand mark kept its size without its style attribute.
    box = page.locator(".auth-head .brand-mark").bounding_box()
    assert box is not None
    assert (round(box["width"]), round(box["height"])) == (40, 40)
