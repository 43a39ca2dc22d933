"""cache_count on each cache backend: counts from 1, keys apart, a lapsed counter starts again.

(Parallel counting is proven through the API: tests/accounts/test_api_ratelimit.py.)
"""

from collections.abc import Iterator

import pytest
from django.core.cache import caches
from django.test import override_settings

from minicrm.core.cache_counters import cache_count

BACKENDS = {
    "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "database": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "minicrm_cache",
    },
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, db: None) -> Iterator[str]:
    with override_settings(CACHES={"default": BACKENDS[request.param]}):
        caches["default"].clear()
        yield request.param
        caches["default"].clear()


def test_counts_one_by_one_per_key(backend: str) -> None:
    counts = [cache_count("a", timeout=60) for _ in range(3)]

    assert counts == [1, 2, 3]
    assert cache_count("b", timeout=60) == 1
    assert caches["default"].get("a") == 3


def test_a_lapsed_counter_starts_again(backend: str) -> None:
    cache_count("a", timeout=60)
    cache_count("a", timeout=60)
    caches["default"].delete("a")  # as when its timeout passes

    assert cache_count("a", timeout=60) == 1
