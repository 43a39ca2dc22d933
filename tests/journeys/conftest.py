"""Fixtures of the journey tests: the app as a fresh install would run it (offline AI, no
cached figures) and a messaging vendor on 127.0.0.1 that posts its receipts to the live server."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache

from minicrm.campaigns.simulator import SimulatorSettings, VendorSimulator

from .capture import Journey

VENDOR_SECRET = "journey-vendor-secret"
VENDOR_SEED = 15
VENDOR_FAILURE_PERCENT = 50.0


@pytest.fixture
def fresh_install(settings: Any) -> Iterator[None]:
    """No Gemini key (the built-in narrator and parser answer) and no figures cached by an
    earlier test: the dashboard computes what this journey stored."""
    settings.AI_PROVIDER = "offline"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def journey() -> Journey:
    return Journey()


@pytest.fixture
def vendor(live_server: Any, settings: Any) -> Iterator[VendorSimulator]:
    """The vendor simulator, which the webhook channel is pointed at. Its receipts wait until
    the test lets them go (`receipts_due_now`): on SQLite the live server shares the test's
    in-memory database connection, so receipts must not arrive while a send is still writing."""
    simulator = VendorSimulator(
        SimulatorSettings(
            secret=VENDOR_SECRET,
            receipts_url=f"{live_server.url}/api/v1/deliveries/receipts",
            receipt_delay=3600,
            failure_percent=VENDOR_FAILURE_PERCENT,
            seed=VENDOR_SEED,
            retry_delay=0.05,
        )
    )
    with simulator:
        settings.MINICRM_WEBHOOK_URL = simulator.messages_url
        settings.MINICRM_WEBHOOK_SECRET = VENDOR_SECRET
        yield simulator
