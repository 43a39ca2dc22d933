"""Campaign pages: the list, the composer and its live preview, a campaign's page, roles.

Writes go through the services, so these tests check what the pages add: the right fields and
numbers on screen, service errors shown under the field they name (never a 500), nothing saved
when a step fails, and viewers reading everything but writing nothing."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from minicrm.accounts.models import Role
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.services import campaign_launch, campaign_send
from minicrm.campaigns.views import lift_percent
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory, OrderFactory, UserFactory

from .conftest import campaign_draft

pytestmark = pytest.mark.django_db(transaction=False)

LIST = reverse("campaigns:list")
NEW = reverse("campaigns:new")
PREVIEW = reverse("campaigns:preview")


def composer_post(chosen: Segment, **values: Any) -> dict[str, Any]:
    fields = {
        "name": "Spring sale",
        "segment": chosen.pk,
        "channel": "log",
        "subject": "",
        "template": "Hi {{ first_name | default('there') }}! {{ unsubscribe_url }}",
        "holdout_percent": "0",
        "action": "save",
    }
    return fields | values


def launched(segment: Segment, **values: Any) -> Campaign:
    """A campaign whose audience is frozen and whose delivery has not started."""
    campaign = campaign_draft(segment, **values)
    campaign_send(campaign_id=campaign.pk)
    campaign_launch(campaign_id=campaign.pk)
    return Campaign.objects.get(pk=campaign.pk)


# ---- The list ------------------------------------------------------------------------------


def test_an_empty_list_offers_a_new_campaign_to_a_marketer_only(
    marketer_client: Client, everyone: Segment
) -> None:
    page = marketer_client.get(LIST).content.decode()
    assert "No campaigns yet" in page
    assert f'href="{NEW}"' in page


def test_a_viewer_sees_the_list_without_write_buttons(
    viewer_client: Client, everyone: Segment
) -> None:
    campaign_draft(everyone, name="Spring")
    page = viewer_client.get(LIST).content.decode()
    assert "Spring" in page
    assert f'href="{NEW}"' not in page


def test_the_list_is_newest_first_with_counters_and_polls_only_while_sending(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(4)
    CustomerFactory(marketing_consent=False)
    old = campaign_draft(everyone, name="Old news")
    Campaign.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    sending = launched(everyone, name="Going out")

    page = marketer_client.get(LIST).content.decode()
    assert page.index("Going out") < page.index("Old news")
    row = page[page.index(f'data-campaign="{sending.pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-status="sending"' in row
    assert '<td class="num">4</td>' in row  # the audience: the one without consent is excluded
    assert 'role="progressbar"' in row
    assert 'hx-trigger="every 2s"' in page

    Campaign.objects.filter(pk=sending.pk).update(status="sent", pending=0, sent=4)
    assert 'hx-trigger="every' not in marketer_client.get(LIST).content.decode()


def test_the_list_answers_htmx_with_the_table_only(
    marketer_client: Client, everyone: Segment
) -> None:
    campaign_draft(everyone, name="Spring")
    response = marketer_client.get(LIST, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="campaign-table"')
    assert "<html" not in body
    assert "Spring" in body


# ---- The composer --------------------------------------------------------------------------


def test_the_composer_preselects_the_segment_and_shows_every_placeholder(
    marketer_client: Client, everyone: Segment
) -> None:
    page = marketer_client.get(f"{NEW}?segment={everyone.pk}").content.decode()
    assert f'<option value="{everyone.pk}" selected>' in page
    for name in ("first_name", "total_spend", "last_order_date", "unsubscribe_url"):
        assert f'data-placeholder="{name}"' in page
    assert 'id="send-dialog"' in page
    assert reverse("insights:suggest_messages", args=[0]) in page


def test_saving_a_draft_creates_it_and_opens_its_page(
    marketer_client: Client, marketer: Any, everyone: Segment
) -> None:
    response = marketer_client.post(NEW, composer_post(everyone, holdout_percent="10"))
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:detail", args=[campaign.pk])
    assert (campaign.name, campaign.segment_id, campaign.status) == (
        "Spring sale",
        everyone.pk,
        "draft",
    )
    assert (campaign.holdout_percent, campaign.created_by) == (10, marketer)


def test_a_template_error_is_shown_under_the_message_naming_the_line_and_nothing_is_saved(
    marketer_client: Client, everyone: Segment
) -> None:
    response = marketer_client.post(
        NEW, composer_post(everyone, template="Hello\n{{ frist_name }}", action="send")
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert 'data-testid="template-error"' in page
    assert "template, line 2: unknown placeholder &#x27;frist_name&#x27;" in page
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"channel": "email", "subject": ""}, "subject", "An email needs a subject."),
        ({"holdout_percent": "60"}, "holdout_percent", "less than or equal to 50"),
        ({"segment": "999999"}, "segment", "No such segment."),
        ({"channel": "sms"}, "channel", "Select a valid choice"),
        ({"template": "  "}, "template", "Write the message."),
        ({"name": ""}, "name", "This field is required."),
        ({"template": ""}, "template", "Write the message."),
        ({"segment": "99999999999999999999"}, "segment", "No such segment."),
        ({"segment": "abc"}, "segment", "No such segment."),
        ({"holdout_percent": "abc"}, "holdout_percent", "Enter a whole number."),
        (
            {"action": "schedule", "scheduled_at": "soon"},
            "scheduled_at",
            "Enter a valid date/time.",
        ),
        ({"action": "launch"}, "action", "Select a valid choice."),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    marketer_client: Client, everyone: Segment, values: dict[str, str], field: str, message: str
) -> None:
    response = marketer_client.post(NEW, composer_post(everyone, **values))
    assert response.status_code == 422
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    assert not Campaign.objects.exists()


def test_send_now_saves_launches_and_delivers(
    marketer_client: Client, everyone: Segment, django_capture_on_commit_callbacks: Any
) -> None:
    CustomerFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(NEW, composer_post(everyone, action="send"))
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert (campaign.status, campaign.audience, campaign.sent) == ("sent", 3, 3)
    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 3


def test_schedule_needs_a_time_in_the_future(marketer_client: Client, everyone: Segment) -> None:
    missing = marketer_client.post(NEW, composer_post(everyone, action="schedule"))
    assert missing.status_code == 422
    assert missing.context["form"].errors["scheduled_at"] == ["Pick the day and time to send it."]
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = marketer_client.post(
        NEW, composer_post(everyone, action="schedule", scheduled_at=past)
    )
    assert response.status_code == 422
    assert not Campaign.objects.exists()

    later = timezone.localtime() + timedelta(days=2)
    response = marketer_client.post(
        NEW,
        composer_post(everyone, action="schedule", scheduled_at=later.strftime("%Y-%m-%dT%H:%M")),
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert campaign.status == "scheduled"
    assert campaign.scheduled_at == later.replace(second=0, microsecond=0)


def test_editing_a_draft_changes_it_and_a_sent_campaign_cannot_be_edited(
    marketer_client: Client, everyone: Segment
) -> None:
    draft = campaign_draft(everyone, name="Spring")
    url = reverse("campaigns:edit", args=[draft.pk])
    page = marketer_client.get(url).content.decode()
    assert 'value="Spring"' in page
    marketer_client.post(url, composer_post(everyone, name="Summer"))
    assert Campaign.objects.get(pk=draft.pk).name == "Summer"

    sent = launched(everyone, name="Gone")
    response = marketer_client.get(reverse("campaigns:edit", args=[sent.pk]))
    assert response.status_code == 302
    response = marketer_client.post(
        reverse("campaigns:edit", args=[sent.pk]), composer_post(everyone, name="Changed")
    )
    assert Campaign.objects.get(pk=sent.pk).name == "Gone"


def test_sending_a_draft_twice_from_two_tabs_is_refused_the_second_time(
    marketer_client: Client, everyone: Segment
) -> None:
    draft = campaign_draft(everyone)
    url = reverse("campaigns:edit", args=[draft.pk])
    assert marketer_client.post(url, composer_post(everyone, action="send")).status_code == 302
    # The second tab still shows the composer: its POST is turned away, nothing sent again.
    response = marketer_client.post(url, composer_post(everyone, action="send"), follow=True)
    assert response.status_code == 200
    assert Campaign.objects.get(pk=draft.pk).status == "sending"
    assert "Only a draft can be edited" in response.content.decode()


# ---- The live preview ----------------------------------------------------------------------


def test_the_preview_counts_the_audience_its_exclusions_and_the_holdout(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(10, first_name="Asha")
    CustomerFactory(marketing_consent=False)
    CustomerFactory(unsubscribed_at=timezone.now())
    CustomerFactory(email="")
    response = marketer_client.post(
        PREVIEW, composer_post(everyone, channel="email", subject="Hi", holdout_percent="20")
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-recipients="8" data-audience="10"' in page
    assert (
        '<li class="muted" data-excluded="no_consent"><span>Excluded: no marketing consent' in page
    )
    assert 'data-excluded="unsubscribed"' in page
    assert 'data-excluded="no_email"' in page
    assert page.count('data-testid="sample-message"') == 3
    assert "Hi Asha!" in page
    assert "/u/" in page  # the rendered unsubscribe link
    assert 'data-testid="no-unsubscribe-link"' not in page
    without = marketer_client.post(PREVIEW, composer_post(everyone, template="Hi {{ city }}"))
    assert 'data-testid="no-unsubscribe-link"' in without.content.decode()


def test_the_preview_names_the_line_of_a_template_error_and_still_counts(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(2)
    page = marketer_client.post(
        PREVIEW, composer_post(everyone, template="Hi\n\n{% if %}")
    ).content.decode()
    assert 'data-testid="template-problem"' in page
    assert "template, line 3:" in page
    assert 'data-recipients="2"' in page
    assert 'data-testid="sample-message"' not in page


def test_the_preview_without_a_segment_asks_for_one(marketer_client: Client, db: None) -> None:
    response = marketer_client.post(PREVIEW, {"segment": "", "template": "Hi"})
    assert response.status_code == 200
    assert "Choose a segment" in response.content.decode()


@pytest.mark.parametrize("segment", ["99999999999999999999", "-1", "1e3", ""])
def test_the_preview_and_the_lists_of_an_impossible_segment_id_are_not_a_500(
    marketer_client: Client, everyone: Segment, segment: str
) -> None:
    preview = marketer_client.post(PREVIEW, composer_post(everyone, segment=segment))
    assert preview.status_code == 200
    assert "Choose a segment" in preview.content.decode()
    assert marketer_client.get(LIST, {"segment": segment}).status_code == 200
    assert marketer_client.get(NEW, {"segment": segment}).status_code == 200


def test_the_preview_of_a_garbage_holdout_or_channel_is_not_a_500(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory()
    response = marketer_client.post(
        PREVIEW, composer_post(everyone, holdout_percent="lots", channel="pigeon")
    )
    assert response.status_code == 200
    assert 'data-recipients="1"' in response.content.decode()


# ---- A campaign's page ---------------------------------------------------------------------


def test_a_draft_page_offers_edit_and_send_to_a_marketer_but_not_a_viewer(
    marketer_client: Client, everyone: Segment
) -> None:
    viewer_client = Client()
    viewer_client.force_login(UserFactory(role=Role.VIEWER))
    draft = campaign_draft(everyone)
    url = reverse("campaigns:detail", args=[draft.pk])
    edit = reverse("campaigns:edit", args=[draft.pk])
    assert f'href="{edit}"' in marketer_client.get(url).content.decode()
    page = viewer_client.get(url).content.decode()
    assert "A draft" in page
    assert f'href="{edit}"' not in page


def test_a_sending_campaign_shows_its_counters_polls_and_can_be_cancelled(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(6)
    CustomerFactory(marketing_consent=False)
    campaign = launched(everyone, holdout_percent=50)
    url = reverse("campaigns:detail", args=[campaign.pk])
    page = marketer_client.get(url).content.decode()
    assert 'data-status="sending"' in page
    assert 'hx-trigger="every 2s"' in page
    assert "no marketing consent <span" in page  # (only reasons that excluded someone)
    assert 'data-dialog-open="cancel-dialog"' in page

    progress = marketer_client.get(reverse("campaigns:progress", args=[campaign.pk]))
    assert 'hx-trigger="every 2s"' in progress.content.decode()

    response = marketer_client.post(reverse("campaigns:cancel", args=[campaign.pk]))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.skipped, campaign.pending) == ("cancelled", 3, 0)
    progress = marketer_client.get(reverse("campaigns:progress", args=[campaign.pk]))
    assert "hx-trigger" not in progress.content.decode()  # done: it stops asking


def test_cancelling_a_sent_campaign_is_a_message_not_a_500(
    marketer_client: Client, everyone: Segment
) -> None:
    campaign = campaign_draft(everyone)
    response = marketer_client.post(reverse("campaigns:cancel", args=[campaign.pk]), follow=True)
    assert response.status_code == 200
    assert "Only a scheduled or sending campaign can be cancelled" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_the_delivery_log_filters_by_status_and_pages(
    marketer_client: Client, everyone: Segment
) -> None:
    people = CustomerFactory.create_batch(30)
    campaign = launched(everyone)
    failed = Delivery.objects.filter(campaign=campaign, customer=people[0])
    failed.update(status="failed", error="Mailbox full")
    log = reverse("campaigns:log", args=[campaign.pk])

    page = marketer_client.get(f"{log}?status=failed").content.decode()
    assert page.count("data-delivery=") == 1
    assert "Mailbox full" in page
    assert people[0].email in page

    page = marketer_client.get(log).content.decode()
    assert page.count("data-delivery=") == 25
    assert "1\N{EN DASH}25 of 30" in page
    page = marketer_client.get(f"{log}?page=2").content.decode()
    assert page.count("data-delivery=") == 5
    # An unknown status shows everyone rather than failing.
    assert marketer_client.get(f"{log}?status=bogus").status_code == 200


def test_a_missing_campaign_is_a_404(marketer_client: Client, db: None) -> None:
    for name in ("detail", "progress", "log", "summary", "edit"):
        for pk in (424242, 99999999999999999999):
            url = reverse(f"campaigns:{name}", args=[pk])
            assert marketer_client.get(url).status_code == 404, url
    for name in ("cancel", "summarise"):
        assert marketer_client.post(reverse(f"campaigns:{name}", args=[424242])).status_code == 404


def test_the_summary_card_renders_whatever_shape_the_summary_has(
    marketer_client: Client, everyone: Segment
) -> None:
    campaign = launched(everyone)
    Campaign.objects.filter(pk=campaign.pk).update(
        summary={
            "headline": "Strong start",
            "findings": ["Delivered well", None],
            "recommendations": "Try SMS",
        },
        summary_status="succeeded",
    )
    page = marketer_client.get(reverse("campaigns:summary", args=[campaign.pk])).content.decode()
    assert "Strong start" in page
    assert "<li>Delivered well</li>" in page
    assert "<li>Try SMS</li>" in page
    assert "hx-trigger" not in page
    Campaign.objects.filter(pk=campaign.pk).update(
        summary=["not", "a", "dict"], summary_status="running"
    )
    page = marketer_client.get(reverse("campaigns:summary", args=[campaign.pk])).content.decode()
    assert "Writing the summary" in page
    assert 'hx-trigger="every 2s"' in page


# ---- Roles ---------------------------------------------------------------------------------


def test_a_viewer_can_read_every_page_but_write_nothing(
    viewer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(2)
    draft = campaign_draft(everyone, name="Draft")
    sending = launched(everyone, name="Sending")
    for url in (
        LIST,
        reverse("campaigns:detail", args=[draft.pk]),
        reverse("campaigns:detail", args=[sending.pk]),
        reverse("campaigns:progress", args=[sending.pk]),
        reverse("campaigns:log", args=[sending.pk]),
        reverse("campaigns:summary", args=[sending.pk]),
    ):
        assert viewer_client.get(url).status_code == 200, url

    refused = [
        viewer_client.get(NEW),
        viewer_client.post(NEW, composer_post(everyone, action="send")),
        viewer_client.post(reverse("campaigns:edit", args=[draft.pk]), composer_post(everyone)),
        viewer_client.post(PREVIEW, composer_post(everyone)),
        viewer_client.post(reverse("campaigns:cancel", args=[sending.pk])),
        viewer_client.post(reverse("campaigns:summarise", args=[sending.pk])),
    ]
    assert [response.status_code for response in refused] == [403] * 6
    assert Campaign.objects.count() == 2
    assert Campaign.objects.get(pk=draft.pk).status == "draft"
    assert Campaign.objects.get(pk=sending.pk).status == "sending"
    assert (
        "Writing the summary"
        not in viewer_client.get(reverse("campaigns:summary", args=[sending.pk])).content.decode()
    )


def test_signed_out_visitors_are_sent_to_sign_in(client: Client, everyone: Segment) -> None:
    draft = campaign_draft(everyone)
    for url in (LIST, NEW, reverse("campaigns:detail", args=[draft.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login" in response["Location"] or "sign-in" in response["Location"]


# ---- Other pages that show campaigns -------------------------------------------------------


def test_the_segment_campaigns_tab_lists_its_campaigns_and_offers_a_new_one(
    marketer_client: Client, everyone: Segment
) -> None:
    other = segment_create(
        name="Nobody",
        rules=parse_rules(
            {
                "match": "all",
                "conditions": [{"field": "order_count", "operator": "gt", "value": 99}],
            }
        ),
        created_by=None,
    )
    campaign_draft(everyone, name="Mine")
    campaign_draft(other, name="Theirs")
    url = reverse("segments:detail", args=[everyone.pk]) + "?tab=campaigns"
    page = marketer_client.get(url).content.decode()
    assert "Mine" in page
    assert "Theirs" not in page
    assert f"{NEW}?segment={everyone.pk}" in page

    empty = marketer_client.get(
        reverse("segments:detail", args=[other.pk]) + "?tab=campaigns"
    ).content.decode()
    assert "Theirs" in empty
    assert "Mine" not in empty


def test_the_dashboard_shows_recent_campaigns_with_their_counters(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(3)
    campaign = launched(everyone, name="Autumn")
    Campaign.objects.filter(pk=campaign.pk).update(status="sent", pending=0, sent=1, delivered=2)
    cache.clear()  # the dashboard's figures, campaigns included, are cached per range
    page = marketer_client.get(reverse("web:dashboard")).content.decode()
    card = page[page.index('data-testid="recent-campaigns"') :]
    assert "Autumn" in card
    row = card[card.index(f'data-campaign="{campaign.pk}"') :]
    row = row[: row.index("</tr>")]
    assert [cell for cell in row.split('<td class="num">')[1:]] == [
        "3</td>\n        ",
        "3</td>\n        ",
        "2</td>\n        ",
        # The dashboard adds the revenue attributed to the recipients (none ordered here).
        '0</td>\n        <td class="num" data-revenue>₹0</td>\n      ',
    ]


def test_the_navigation_points_at_the_campaigns_list(marketer_client: Client, db: None) -> None:
    page = marketer_client.get(LIST).content.decode()
    assert f'<a href="{LIST}" aria-current="page">' in page


def test_a_draft_page_says_whom_it_would_reach_now(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(10)
    CustomerFactory(marketing_consent=False)
    draft = campaign_draft(everyone, holdout_percent=30)
    page = marketer_client.get(reverse("campaigns:detail", args=[draft.pk])).content.decode()
    assert '<strong class="num" data-testid="reach">7</strong> people' in page
    assert "(1 in the segment cannot be reached)" in page
    assert 'data-testid="delivery-log"' not in page  # nothing to list before the launch


def test_the_progress_poll_reloads_the_page_once_the_campaign_moves_on(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(2)
    campaign = launched(everyone)
    url = reverse("campaigns:progress", args=[campaign.pk])
    page = marketer_client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert f'hx-get="{url}?seen=sending%3A1"' in page
    assert "HX-Refresh" not in marketer_client.get(url, {"seen": "sending:1"}).headers
    Campaign.objects.filter(pk=campaign.pk).update(status="sent", pending=0, sent=2)
    assert marketer_client.get(url, {"seen": "sending:1"}).headers["HX-Refresh"] == "true"


def test_the_results_show_revenue_per_recipient_against_the_holdout_and_the_lift(
    marketer_client: Client, everyone: Segment, django_capture_on_commit_callbacks: Any
) -> None:
    CustomerFactory.create_batch(4)
    campaign = campaign_draft(everyone, holdout_percent=50)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_send(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.held_out) == (2, 2)
    later = timezone.now() + timedelta(hours=1)
    for delivery in Delivery.objects.filter(campaign=campaign):
        amount = Decimal("300.00") if delivery.status == "sent" else Decimal("100.00")
        OrderFactory(customer=delivery.customer, amount=amount, ordered_at=later)

    page = marketer_client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    results = page[page.index('data-testid="campaign-results"') :]
    assert "₹600" in results  # revenue from the two recipients
    assert "₹300.00" in results  # per recipient
    assert "vs. ₹100.00 per held-out customer" in results
    assert '<span class="stat-value cmp-up" data-testid="lift">+200.0%</span>' in results
    assert "₹400 more than without the message" in results


def test_summarise_writes_the_summary_and_htmx_gets_the_card(
    marketer_client: Client,
    everyone: Segment,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.AI_PROVIDER = "offline"
    CustomerFactory.create_batch(3)
    campaign = launched(everyone)
    url = reverse("campaigns:summarise", args=[campaign.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section class="card" id="summary"')
    campaign.refresh_from_db()
    assert campaign.summary_status == "succeeded"
    page = marketer_client.get(reverse("campaigns:summary", args=[campaign.pk])).content.decode()
    assert campaign.summary["headline"] in page.replace("&#x27;", "'")
    assert "Regenerate" in page


def test_summarising_a_draft_is_a_message_not_a_500(
    marketer_client: Client, everyone: Segment
) -> None:
    draft = campaign_draft(everyone)
    response = marketer_client.post(reverse("campaigns:summarise", args=[draft.pk]), follow=True)
    assert response.status_code == 200
    assert "A summary can be written once the campaign has launched." in response.content.decode()
    assert Campaign.objects.get(pk=draft.pk).summary_status == ""


def test_the_list_of_one_segment_names_it_and_leaves_the_others_out(
    marketer_client: Client, everyone: Segment
) -> None:
    other = segment_create(
        name="Someone", rules=parse_rules({"match": "any", "conditions": []}), created_by=None
    )
    campaign_draft(everyone, name="Mine")
    campaign_draft(other, name="Theirs")
    page = marketer_client.get(LIST, {"segment": everyone.pk}).content.decode()
    assert "Mine" in page
    assert "Theirs" not in page
    assert (
        f'Sent to <a href="{reverse("segments:detail", args=[everyone.pk])}">Everyone</a>' in page
    )
    assert marketer_client.get(LIST, {"segment": "nope"}).status_code == 200


def test_the_list_and_the_log_cost_the_same_queries_for_few_rows_as_for_many(
    marketer_client: Client, everyone: Segment
) -> None:
    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert marketer_client.get(url).status_code == 200
        return len(captured)

    CustomerFactory.create_batch(3)
    campaign = launched(everyone, name="First")
    log = reverse("campaigns:log", args=[campaign.pk])
    few = (queries(LIST), queries(log))
    CustomerFactory.create_batch(20)
    for index in range(10):
        launched(everyone, name=f"More {index}")
    many_log = reverse("campaigns:log", args=[Campaign.objects.first().pk])  # type: ignore[union-attr]
    assert (queries(LIST), queries(many_log)) == few


def test_the_list_filtered_by_segment_keeps_the_filter_on_its_next_page(
    marketer_client: Client, everyone: Segment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("minicrm.campaigns.views.LIST_PAGE_SIZE", 2)
    for number in range(3):
        campaign_draft(everyone, name=f"Draft {number}")
    html = marketer_client.get(f"/campaigns/?segment={everyone.pk}").content.decode()
    assert f'href="?segment={everyone.pk}&amp;page=2"' in html
    second = marketer_client.get(f"/campaigns/?segment={everyone.pk}&page=2").content.decode()
    assert "Draft 0" in second
    assert f'href="?segment={everyone.pk}&amp;page=1"' in second


def test_a_large_lift_is_grouped_like_every_other_number() -> None:
    assert lift_percent(Decimal("10.257")) == "+1,025.7%"
    assert lift_percent(-0.5) == "-50.0%"


def test_a_sent_webhook_campaign_keeps_polling_while_receipts_are_outstanding(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(2)
    campaign = launched(everyone)
    url = reverse("campaigns:progress", args=[campaign.pk])
    just_now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(
        channel="webhook", status="sent", pending=0, sent=1, delivered=1, finished_at=just_now
    )
    assert 'hx-trigger="every 5s"' in marketer_client.get(url).content.decode()
    # Every receipt in: the counters are final.
    Campaign.objects.filter(pk=campaign.pk).update(sent=0, delivered=2)
    assert "hx-trigger" not in marketer_client.get(url).content.decode()
    # Receipts still missing an hour after the end: they are not waited for any more.
    Campaign.objects.filter(pk=campaign.pk).update(
        sent=1, delivered=1, finished_at=just_now - timedelta(hours=2)
    )
    assert "hx-trigger" not in marketer_client.get(url).content.decode()


def test_a_sent_log_campaign_does_not_wait_for_receipts(
    marketer_client: Client, everyone: Segment
) -> None:
    CustomerFactory.create_batch(2)
    campaign = launched(everyone)
    Campaign.objects.filter(pk=campaign.pk).update(
        status="sent", pending=0, sent=2, finished_at=timezone.now()
    )
    page = marketer_client.get(reverse("campaigns:progress", args=[campaign.pk]))
    assert "hx-trigger" not in page.content.decode()
