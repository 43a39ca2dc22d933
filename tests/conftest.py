"""Fixtures shared by every test: users, clients, service URLs and the browser."""

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import Browser, Page, sync_playwright

from minicrm.accounts.models import Role, User
from minicrm.accounts.services import api_token_create

from .factories import AdminFactory, UserFactory


def service_url(variable: str, what: str) -> str:
    """The URL of a server a test needs; skips (or fails in CI) when it is not configured."""
    url = os.environ.get(variable, "")
    if not url:
        message = f"{what} is not configured: set {variable} to run this test"
        if os.environ.get("MINICRM_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives the browser is a browser test, marked or not, so the passes that
    deselect browser tests (`-m "not browser"`) never report it as a skip."""
    for item in items:
        if "page" in getattr(item, "fixturenames", ()) or "browser" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def immediate_tasks(settings: Any) -> None:
    """Tasks run in place, whichever backend the run uses (MINICRM_TEST_TASKS_BACKEND): for the
    tests of what the immediate backend itself does, such as running a deferred task now."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def admin(db: None) -> User:
    return AdminFactory()


@pytest.fixture
def marketer(db: None) -> User:
    return UserFactory()


@pytest.fixture
def admin_client(client: Client, admin: User) -> Client:
    client.force_login(admin)
    return client


@pytest.fixture
def marketer_client(client: Client, marketer: User) -> Client:
    """The browser session of a marketer (HTML views, session-authenticated API calls)."""
    client.force_login(marketer)
    return client


@pytest.fixture
def viewer_client(client: Client, db: None) -> Client:
    """The browser session of a read-only viewer."""
    client.force_login(UserFactory(role=Role.VIEWER))
    return client


@pytest.fixture
def api_token(marketer: User) -> str:
    _token, raw = api_token_create(user=marketer, name="tests")
    return raw


@pytest.fixture
def api_client(api_token: str) -> Client:
    """A client that sends the bearer token on every request, without a session."""
    return Client(headers={"Authorization": f"Bearer {api_token}"})


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if os.environ.get("MINICRM_SKIP_BROWSER") == "1":
        pytest.skip("browser tests run in the SQLite pass only (MINICRM_SKIP_BROWSER=1)")
    if not os.path.exists("/usr/bin/chromium"):
        message = "Chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
        if os.environ.get("MINICRM_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API runs an event loop; the live server's ORM calls are in other threads.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    yield page
    context.close()
