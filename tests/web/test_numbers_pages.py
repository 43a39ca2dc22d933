"""Money and counts as each page writes them: a card's total in whole units, a single order's
amount and per-recipient figures to the paisa, compact counts for chart axes, and the classes
that let a long stat value fit its card (minicrm.web.templatetags.formatting)."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from minicrm.campaigns.models import Delivery
from minicrm.campaigns.services import campaign_send
from minicrm.core.formatting import number_compact
from minicrm.segments.models import Segment, SegmentSize
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from minicrm.web.templatetags.formatting import STAT_FIT_MAX, count_compact, stat_fit
from tests.campaigns.conftest import campaign_draft
from tests.factories import CustomerFactory, OrderFactory, orders_on_recent_days


def _render(source: str, **context: Any) -> str:
    return Template(source).render(Context(context))


def test_compact_counts_in_the_shop_locale() -> None:
    assert [number_compact(n) for n in (0, 999, 1_200, 1_234_567, 3_500_000, 25_000_000)] == [
        "0",
        "999",
        "1.2K",
        "12.3L",
        "35L",
        "2.5Cr",
    ]
    assert number_compact(None) == count_compact(None) == "—"
    with override_settings(MINICRM_CURRENCY="USD", MINICRM_LOCALE="en"):
        assert [number_compact(n) for n in (1_234_567, 3_500_000)] == ["1.2M", "3.5M"]
        assert count_compact(2_500_000) == "2.5M"


def test_a_stat_value_gets_a_fit_class_by_its_length() -> None:
    assert stat_fit("₹999") == ""  # 4 characters: the usual size fits any card
    assert stat_fit("May 2026") == "stat-fit-8"  # letters are wide: fitted like the long amounts
    assert stat_fit("₹1,23,45,681") == "stat-fit-12"
    assert stat_fit("x" * 60) == f"stat-fit-{STAT_FIT_MAX}"


def test_the_number_format_script_tells_charts_the_shop_locale() -> None:
    html = _render('{% number_format_script "size-format" %}')
    assert html == (
        '<script id="size-format" type="application/json">'
        '{"currency": "INR", "locale": "en-IN", "symbol": "\\u20b9"}</script>'
    )


@pytest.mark.django_db
def test_a_customer_page_totals_whole_and_orders_to_the_paisa(admin_client: Client) -> None:
    customer = CustomerFactory(external_id="BIG")
    orders_on_recent_days("BIG", ["12345678.90", "2.50"])
    page = admin_client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    # The cards: whole rupees (the paisa on hover), each sized to fit its card.
    assert 'class="card stat stat-fit-12"' in page
    assert 'title="₹1,23,45,681.40">₹1,23,45,681</div>' in page
    assert 'title="₹61,72,840.70">₹61,72,841</div>' in page
    # The table: each order to the paisa.
    assert '<td class="num">₹1,23,45,678.90' in page
    assert '<td class="num">₹2.50' in page


@pytest.mark.django_db
def test_campaign_results_and_table_fold_their_figures_for_a_phone(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    everyone = segment_create(
        name="Everyone", rules=parse_rules({"match": "all", "conditions": []}), created_by=None
    )
    CustomerFactory.create_batch(4)
    campaign = campaign_draft(everyone, holdout_percent=50)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_send(campaign_id=campaign.pk)
    later = timezone.now() + timedelta(hours=1)
    for delivery in Delivery.objects.filter(campaign=campaign):
        amount = Decimal("1234567.25") if delivery.status == "sent" else Decimal("100.10")
        OrderFactory(customer=delivery.customer, amount=amount, ordered_at=later)

    page = admin_client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    results = page[page.index('data-testid="campaign-results"') :]
    # Revenue is a total (whole rupees); per recipient is to the paisa, in the card and the table.
    assert '<div class="cmp-result stat-fit-10"><span class="stat-label">Revenue' in results
    assert '<span class="stat-value">₹24,69,135</span>' in results
    assert '<span class="stat-value">₹12,34,567.25</span>' in results
    assert '<td class="num">₹24,69,135<div class="col-narrow muted small">₹12,34,567.25 each' in (
        results
    )
    assert '<td class="num col-wide">₹12,34,567.25</td>' in results
    assert '<td class="num">₹200<div class="col-narrow muted small">₹100.10 each</div>' in results
    assert '<div class="col-narrow muted small">2 bought</div>' in results

    table = admin_client.get(reverse("campaigns:list")).content.decode()
    row = table[table.index(f'data-campaign="{campaign.pk}"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="num">4</td>' in row  # the audience stays a column on a phone
    assert "2 sent · 0 delivered · 0 failed" in row  # the other counters fold under the name


@pytest.mark.django_db
def test_the_segment_chart_gets_the_shop_locale(admin_client: Client) -> None:
    segment = Segment.objects.create(
        name="Big", last_count=3_400_000, last_counted_at=timezone.now()
    )
    today = timezone.localdate()
    for days_ago in (0, 1):
        SegmentSize.objects.create(
            segment=segment,
            day=today - timedelta(days=days_ago),
            rules_hash="h",
            counted_at=timezone.now(),
            size=3_400_000 - days_ago,
        )
    page = admin_client.get(reverse("segments:detail", args=[segment.pk])).content.decode()
    assert (
        '<script id="size-format" type="application/json">{"currency": "INR", "locale": "en-IN"'
        in page
    )
