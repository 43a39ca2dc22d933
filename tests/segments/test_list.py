"""The segments list: size, share of all customers, 30-day trend, search, sort and paging."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from minicrm.accounts.models import User
from minicrm.core.charts import sparkline_points
from minicrm.customers.selectors import CUSTOMERS_TOTAL_CACHE_KEY
from minicrm.segments.compiler import today_in_zone
from minicrm.segments.models import Segment, SegmentSize
from minicrm.segments.selectors import (
    segment_list_page_rows,
    segment_size_trends,
)
from tests.factories import CustomerFactory
from tests.segments.size_history import history

pytestmark = pytest.mark.django_db

LIST = "/segments/"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


def names(html: str) -> list[str]:
    return re.findall(r'class="seg-list-name" href="[^"]+">([^<]+)</a>', html)


def get(client: Client, query: str = "") -> str:
    response = client.get(f"{LIST}{query}")
    assert response.status_code == 200
    return response.content.decode()


def row_of(html: str, segment: Segment) -> str:
    match = re.search(rf'<tr data-segment="{segment.pk}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {segment.name}"
    return match.group(1)


# ---- size, share and trend ---------------------------------------------------------------------


def test_each_row_shows_its_size_share_sparkline_and_change(marketer_client: Client) -> None:
    cache.set(CUSTOMERS_TOTAL_CACHE_KEY, 1000, 60)
    growing = history("Growing", [380, 400, 420, 500])
    shrinking = history("Shrinking", [90, 60, 50])
    html = get(marketer_client)
    row = row_of(html, growing)
    assert '<span class="seg-size" data-testid="size">500</span>' in row
    assert '<span class="seg-share-text" data-testid="share">50%</span>' in row
    assert 'class="pct-50"' in row
    assert f'points="{sparkline_points([380, 400, 420, 500])}"' in row
    assert 'aria-label="Size over the last 30 days: from 380 to 500"' in row
    assert re.search(r'class="seg-change up".*?\+120<span class="sr-only"> in 30 days', row, re.S)
    row = row_of(html, shrinking)
    assert 'data-testid="share">5%</span>' in row
    assert re.search(
        'class="seg-change down".*?\u221240<span class="sr-only"> in 30 days', row, re.S
    )


def test_share_uses_the_cached_customer_total_and_never_counts_per_segment(
    marketer_client: Client,
) -> None:
    CustomerFactory.create_batch(4)
    history("Small", [1])
    history("Everyone", [4])
    html = get(marketer_client)
    assert 'data-testid="share">25%</span>' in html
    assert 'data-testid="share">100%</span>' in html
    assert cache.get(CUSTOMERS_TOTAL_CACHE_KEY) == 4
    CustomerFactory.create_batch(4)
    # The cached total stands for a minute: no COUNT over customers on the next view.
    with CaptureQueriesContext(connection) as captured:
        html = get(marketer_client)
    assert 'data-testid="share">25%</span>' in html
    assert not [q for q in captured.captured_queries if "customers_customer" in q["sql"]]


def test_small_and_uncounted_shares(marketer_client: Client) -> None:
    cache.set(CUSTOMERS_TOTAL_CACHE_KEY, 10_000, 60)
    tiny = history("Tiny", [3])
    some = history("Some", [250])
    never = history("Never counted", [])
    html = get(marketer_client)
    assert 'data-testid="share">&lt;1%</span>' in row_of(html, tiny)
    assert 'class="pct-1"' in row_of(html, tiny)
    assert 'data-testid="share">2.5%</span>' in row_of(html, some)
    assert "Not counted yet" in row_of(html, never)
    assert "No history yet" in row_of(html, never)
    # One day is no trend: no line and no change, but it says so.
    assert "One day so far" in row_of(html, tiny)
    assert "<polyline" not in row_of(html, tiny)


def test_trend_keeps_the_latest_count_of_a_day_and_the_last_30_days_only() -> None:
    segment = history("Window", [7] * 10 + list(range(100, 130)))
    today = today_in_zone()
    SegmentSize.objects.create(
        segment=segment,
        day=today,
        rules_hash="r2",
        counted_at=timezone.now() + timedelta(minutes=1),
        size=999,
    )
    other = history("Other", [1, 2])
    trends = segment_size_trends(segment_ids=[segment.pk, other.pk])
    assert trends[segment.pk] == [*range(100, 129), 999]
    assert trends[other.pk] == [1, 2]


def test_trends_for_a_page_are_one_query(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    ids = [history(f"S{index}", [index, index + 1, index + 2]).pk for index in range(5)]
    with django_assert_num_queries(1):
        trends = segment_size_trends(segment_ids=ids)
    assert trends == {pk: [index, index + 1, index + 2] for index, pk in enumerate(ids)}


# ---- search ------------------------------------------------------------------------------------


def test_search_by_name_ignores_case_and_keeps_the_sort(marketer_client: Client) -> None:
    history("VIP buyers", [10])
    history("Lapsed vips", [30])
    history("Pune regulars", [20])
    html = get(marketer_client, "?q=vIp&sort=-size")
    assert names(html) == ["Lapsed vips", "VIP buyers"]
    assert 'value="vIp"' in html
    assert '<input type="hidden" name="sort" value="-size">' in html


def test_a_search_without_matches_says_so_with_a_way_back(marketer_client: Client) -> None:
    history("VIP buyers", [10])
    html = get(marketer_client, "?q=zebra&sort=-size")
    assert "No segment matches “zebra”" in html
    assert 'href="/segments/?sort=-size"' in html
    assert "Clear search" in html
    assert "No segments yet" not in html


# ---- sort --------------------------------------------------------------------------------------


@pytest.fixture
def three(marketer: User) -> dict[str, Segment]:
    return {
        "b": history("Bravo", [100, 100, 300], counted_ago=5),
        "a": history("alpha", [500, 450], counted_ago=1),
        "c": history("Charlie", [50, 60], counted_ago=3),
        "n": history("Delta never counted", []),
    }


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["alpha", "Bravo", "Charlie", "Delta never counted"]),
        ("name", ["alpha", "Bravo", "Charlie", "Delta never counted"]),
        ("-name", ["Delta never counted", "Charlie", "Bravo", "alpha"]),
        ("size", ["Charlie", "Bravo", "alpha", "Delta never counted"]),
        ("-size", ["alpha", "Bravo", "Charlie", "Delta never counted"]),
        ("counted", ["Bravo", "Charlie", "alpha", "Delta never counted"]),
        ("-counted", ["alpha", "Charlie", "Bravo", "Delta never counted"]),
        ("change", ["alpha", "Charlie", "Bravo", "Delta never counted"]),
        ("-change", ["Bravo", "Charlie", "alpha", "Delta never counted"]),
        ("bogus", ["alpha", "Bravo", "Charlie", "Delta never counted"]),
        ("size;drop", ["alpha", "Bravo", "Charlie", "Delta never counted"]),
    ],
)
def test_each_sort_order(
    marketer_client: Client, three: dict[str, Segment], sort: str, expected: list[str]
) -> None:
    assert names(get(marketer_client, f"?sort={sort}")) == expected


@pytest.mark.parametrize("sort", ["change", "-change"])
def test_a_segment_counted_on_one_day_has_no_change_and_sorts_last(
    marketer_client: Client, sort: str
) -> None:
    history("One day", [10])
    history("Up", [1, 5])
    history("Down", [5, 1])
    history("Flat", [3, 3])
    middle = ["Flat"]
    ends = ["Down", "Up"] if sort == "change" else ["Up", "Down"]
    assert names(get(marketer_client, f"?sort={sort}")) == [ends[0], *middle, ends[1], "One day"]


def test_the_selector_refuses_an_unknown_sort() -> None:
    with pytest.raises(ValueError, match="Unknown segment sort"):
        segment_list_page_rows(sort="rules")


def test_headers_are_sort_links_with_aria_sort(
    marketer_client: Client, three: dict[str, Segment]
) -> None:
    html = get(marketer_client, "?q=a&sort=-size")
    assert re.search(
        r'class="seg-col-size num" aria-sort="descending">\s*'
        r'<a href="/segments/\?q=a&amp;sort=size"',
        html,
    )
    assert re.search(r'class="seg-col-name" aria-sort="none">\s*<a href="/segments/\?q=a"', html)
    assert re.search(r'aria-sort="none">\s*<a href="/segments/\?q=a&amp;sort=-change"', html)
    assert re.search(r'aria-sort="none">\s*<a href="/segments/\?q=a&amp;sort=-counted"', html)
    default = get(marketer_client)
    assert re.search(
        r'class="seg-col-name" aria-sort="ascending">\s*<a href="/segments/\?sort=-name"', default
    )


# ---- paging ------------------------------------------------------------------------------------


def test_page_links_keep_the_search_and_the_sort(
    marketer_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("minicrm.segments.views_list.LIST_PAGE_SIZE", 2)
    for index in range(5):
        history(f"Club {index}", [index + 1])
    history("Other", [100])
    html = get(marketer_client, "?q=club&sort=-size")
    assert names(html) == ["Club 4", "Club 3"]
    assert 'href="?q=club&amp;sort=-size&amp;page=2"' in html
    second = get(marketer_client, "?q=club&sort=-size&page=2")
    assert names(second) == ["Club 2", "Club 1"]
    assert 'href="?q=club&amp;sort=-size&amp;page=1"' in second
    assert 'href="?q=club&amp;sort=-size&amp;page=3"' in second
    plain = get(marketer_client)
    assert 'href="?page=2"' in plain


# ---- cost --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["name", "-change"])
def test_two_hundred_segments_cost_a_bounded_number_of_queries(
    marketer_client: Client,
    django_assert_max_num_queries: DjangoAssertNumQueries,
    monkeypatch: pytest.MonkeyPatch,
    sort: str,
) -> None:
    monkeypatch.setattr("minicrm.segments.views_list.LIST_PAGE_SIZE", 200)
    cache.set(CUSTOMERS_TOTAL_CACHE_KEY, 1000, 60)
    today = today_in_zone()
    now = timezone.now()
    segments = Segment.objects.bulk_create(
        Segment(name=f"Segment {index:03d}", last_count=index, last_counted_at=now)
        for index in range(200)
    )
    SegmentSize.objects.bulk_create(
        SegmentSize(
            segment=segment,
            day=today - timedelta(days=day),
            rules_hash="r",
            counted_at=now,
            size=segment.last_count + day,
        )
        for segment in segments
        for day in range(30)
    )
    get(marketer_client)  # the session and the user, cached after the first request
    with django_assert_max_num_queries(8):
        html = get(marketer_client, f"?sort={sort}")
    assert len(names(html)) == 200
    assert html.count('<svg class="sparkline"') == 200
