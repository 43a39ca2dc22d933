from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from minicrm.web.templatetags.formatting import ago, count, money


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=20), "just now"),
        (timedelta(minutes=1), "1\xa0minute ago"),
        (timedelta(minutes=59), "59\xa0minutes ago"),
        (timedelta(hours=5), "5\xa0hours ago"),
        (timedelta(days=12), "12\xa0days ago"),
        (timedelta(days=59), "59\xa0days ago"),
        (timedelta(days=90), "3\xa0months ago"),
        (timedelta(days=800), "2\xa0years ago"),
        (-timedelta(hours=3, minutes=1), "in 3\xa0hours"),
    ],
)
def test_ago_says_one_unit_as_people_do(delta: timedelta, expected: str) -> None:
    assert ago(timezone.now() - delta) == expected


def test_empty_values_show_a_dash() -> None:
    assert (ago(None), count(None), money(None)) == ("—", "—", "—")


def test_money_and_count_group_thousands() -> None:
    assert money(Decimal("1234567.891")) == "₹12,34,568"
    assert money(Decimal("-5.5"), 2) == "-₹5.50"
    assert count(1234567) == "1,234,567"
