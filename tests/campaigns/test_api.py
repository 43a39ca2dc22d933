"""The campaigns REST API: every route, every role, and its 404s, 409s and 422s."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from minicrm.accounts.models import Role
from minicrm.accounts.services import api_token_create
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import AdminFactory, CustomerFactory, OrderFactory, UserFactory

from .conftest import campaign_draft

pytestmark = pytest.mark.django_db(transaction=False)

MISSING = 987654


def client_for(role: Role) -> Client:
    user = AdminFactory() if role == Role.ADMIN else UserFactory(role=role)
    _token, raw = api_token_create(user=user, name=str(role))
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def viewer_api() -> Client:
    return client_for(Role.VIEWER)


def post(client: Client, path: str, body: Any = None) -> Any:
    data = "" if body is None else json.dumps(body)
    return client.post(path, data, content_type="application/json")


def patch(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.patch(path, json.dumps(body), content_type="application/json")


def new_campaign(everyone: Any, **values: Any) -> dict[str, Any]:
    return {
        "name": "Spring",
        "segment_id": everyone.pk,
        "template": "Hi {{ first_name | default('there') }}, leave: {{ unsubscribe_url }}",
    } | values


# --- Create, read, list ------------------------------------------------------------------


def test_a_marketer_creates_a_draft_and_reads_it_back(api_client, everyone, marketer):
    response = post(api_client, "/api/v1/campaigns", new_campaign(everyone, holdout_percent=10))

    assert response.status_code == 201
    body = response.json()
    assert body == api_client.get(f"/api/v1/campaigns/{body['id']}").json()
    assert body["status"] == "draft"
    assert (body["name"], body["segment_id"], body["segment_name"]) == (
        "Spring",
        everyone.pk,
        "Everyone",
    )
    assert (body["channel"], body["subject"], body["holdout_percent"]) == ("log", "", 10)
    assert body["created_by"] == marketer.email
    assert body["counters"] == {
        "audience": 0,
        "held_out": 0,
        "pending": 0,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "skipped": 0,
        "excluded": {},
    }
    assert body["results"] is None
    assert body["summary"] == {
        "status": "",
        "provider": "",
        "error": "",
        "written_at": None,
        "content": None,
    }
    assert Campaign.objects.get(pk=body["id"]).created_by == marketer


def test_the_list_is_newest_first_paged_and_filtered_by_status_and_segment(
    api_client, everyone, settings
):
    other = segment_create(
        name="Pune",
        rules=parse_rules(
            {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "P"}]}
        ),
        created_by=None,
    )
    first = campaign_draft(everyone, name="First")
    second = campaign_draft(other, name="Second")
    third = campaign_draft(everyone, name="Third")
    Campaign.objects.filter(pk=first.pk).update(status=Campaign.Status.CANCELLED)

    everything = api_client.get("/api/v1/campaigns").json()
    paged = api_client.get("/api/v1/campaigns?page=2&page_size=2").json()
    drafts = api_client.get("/api/v1/campaigns?status=draft").json()
    of_everyone = api_client.get(f"/api/v1/campaigns?segment_id={everyone.pk}").json()
    both = api_client.get(f"/api/v1/campaigns?segment_id={everyone.pk}&status=draft").json()

    assert [item["name"] for item in everything["items"]] == ["Third", "Second", "First"]
    assert everything["count"] == 3
    assert ([item["id"] for item in paged["items"]], paged["count"]) == ([first.pk], 3)
    assert [item["id"] for item in drafts["items"]] == [third.pk, second.pk]
    assert [item["id"] for item in of_everyone["items"]] == [third.pk, first.pk]
    assert [item["id"] for item in both["items"]] == [third.pk]
    assert set(everything["items"][0]) >= {"counters", "progress_percent", "status"}


def test_list_filters_are_validated(api_client, db):
    bad_status = api_client.get("/api/v1/campaigns?status=posted")
    bad_segment = api_client.get("/api/v1/campaigns?segment_id=0")

    assert bad_status.status_code == bad_segment.status_code == 422
    assert bad_status.json()["detail"][0]["loc"] == ["query", "status"]
    assert bad_segment.json()["detail"][0]["loc"] == ["query", "segment_id"]


# --- 422s name the field -------------------------------------------------------------------


def test_a_template_error_is_a_422_naming_the_field_and_the_line(api_client, everyone):
    response = post(
        api_client, "/api/v1/campaigns", new_campaign(everyone, template="Hi\n{{ frist_name }}")
    )

    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "template"
    assert body["detail"].startswith("template, line 2:")
    assert "frist_name" in body["detail"]
    assert Campaign.objects.count() == 0


def test_a_subject_syntax_error_is_a_422_naming_the_subject(api_client, everyone):
    response = post(
        api_client,
        "/api/v1/campaigns",
        new_campaign(everyone, channel="email", subject="Hello {{ first_name "),
    )

    assert response.status_code == 422
    assert response.json()["field"] == "subject"
    assert Campaign.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"holdout_percent": 51}, ["body", "payload", "holdout_percent"]),
        ({"channel": "fax"}, ["body", "payload", "channel"]),
        ({"segment_id": 0}, ["body", "payload", "segment_id"]),
        ({"name": "x" * 121}, ["body", "payload", "name"]),
    ],
)
def test_schema_violations_are_422s_naming_the_field(api_client, everyone, change, loc):
    response = post(api_client, "/api/v1/campaigns", new_campaign(everyone, **change))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc
    assert Campaign.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"segment_id": MISSING}, "segment_id"),
        ({"name": "   "}, "name"),
        ({"template": "  "}, "template"),
        ({"channel": "email"}, "subject"),  # an email needs a subject
    ],
)
def test_values_the_services_refuse_are_422s_naming_the_field(api_client, everyone, change, field):
    response = post(api_client, "/api/v1/campaigns", new_campaign(everyone, **change))

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert Campaign.objects.count() == 0


# --- Edit -----------------------------------------------------------------------------------


def test_a_draft_is_edited_field_by_field_and_a_sent_one_is_a_409(api_client, everyone):
    campaign = campaign_draft(everyone)

    renamed = patch(api_client, f"/api/v1/campaigns/{campaign.pk}", {"name": "Summer"})
    bad = patch(api_client, f"/api/v1/campaigns/{campaign.pk}", {"template": "{% if %}"})
    post(api_client, f"/api/v1/campaigns/{campaign.pk}/send")
    late = patch(api_client, f"/api/v1/campaigns/{campaign.pk}", {"name": "Autumn"})

    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Summer"
    assert renamed.json()["template"] == campaign.template  # fields not sent stay
    assert bad.status_code == 422
    assert bad.json()["field"] == "template"
    assert late.status_code == 409
    assert set(late.json()) == {"detail"}
    assert Campaign.objects.get(pk=campaign.pk).name == "Summer"


# --- Preview ---------------------------------------------------------------------------------


def test_preview_counts_the_audience_names_the_excluded_and_renders_samples(viewer_api, everyone):
    big = CustomerFactory(first_name="Asha", total_spend=Decimal("900.00"))
    small = CustomerFactory(first_name="Ravi", total_spend=Decimal("100.00"))
    CustomerFactory(marketing_consent=False)
    CustomerFactory(unsubscribed_at=timezone.now())
    CustomerFactory(email="")
    campaign = campaign_draft(everyone, channel="email", subject="For {{ first_name }}")

    response = post(viewer_api, f"/api/v1/campaigns/{campaign.pk}/preview")

    assert response.status_code == 200
    body = response.json()
    assert body["audience"] == 2
    assert body["excluded"] == {"unsubscribed": 1, "no_consent": 1, "no_email": 1}
    assert [sample["customer_id"] for sample in body["samples"]] == [big.pk, small.pk]
    first = body["samples"][0]
    assert (first["to"], first["subject"]) == (big.email, "For Asha")
    assert first["body"].startswith("Hi Asha, leave: http")


def test_preview_of_a_campaign_whose_segment_was_deleted_is_a_409(api_client, everyone):
    campaign = campaign_draft(everyone)
    everyone.delete()

    response = post(api_client, f"/api/v1/campaigns/{campaign.pk}/preview")

    assert response.status_code == 409
    assert "segment" in response.json()["detail"]


# --- Send, schedule, cancel ----------------------------------------------------------------


def test_send_is_202_delivers_and_a_second_send_is_a_409(
    api_client, everyone, django_capture_on_commit_callbacks
):
    CustomerFactory.create_batch(4)
    campaign = campaign_draft(everyone)

    with django_capture_on_commit_callbacks(execute=True):
        sent = client_post_no_body(api_client, f"/api/v1/campaigns/{campaign.pk}/send")
    again = post(api_client, f"/api/v1/campaigns/{campaign.pk}/send")
    detail = api_client.get(f"/api/v1/campaigns/{campaign.pk}").json()

    assert sent.status_code == 202
    assert sent.json()["status"] in {"sending", "sent"}
    assert again.status_code == 409
    assert set(again.json()) == {"detail"}
    assert detail["status"] == "sent"
    assert detail["counters"] | {"excluded": {}} == {
        "audience": 4,
        "held_out": 0,
        "pending": 0,
        "sent": 4,
        "delivered": 0,
        "failed": 0,
        "skipped": 0,
        "excluded": {},
    }
    assert detail["progress_percent"] == 100
    assert detail["results"]["recipients"] == 4
    assert Delivery.objects.filter(campaign=campaign).count() == 4


def client_post_no_body(client: Client, path: str) -> Any:
    """A POST with no body at all, as `curl -X POST` sends it."""
    return client.generic("POST", path)


def test_results_in_the_detail_are_the_attributed_revenue(
    api_client, everyone, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    campaign = campaign_draft(everyone)
    with django_capture_on_commit_callbacks(execute=True):
        post(api_client, f"/api/v1/campaigns/{campaign.pk}/send")
    sent_at = Delivery.objects.get(campaign=campaign).sent_at
    OrderFactory(customer=customer, amount=Decimal("10.05"), ordered_at=sent_at)
    OrderFactory(customer=customer, amount=Decimal("0.20"), ordered_at=sent_at + timedelta(days=2))

    results = api_client.get(f"/api/v1/campaigns/{campaign.pk}").json()["results"]

    assert results == {
        "window_days": 14,
        "recipients": 1,
        "recipient_buyers": 1,
        "recipient_revenue": "10.25",
        "revenue_per_recipient": "10.25",
        "held_out": 0,
        "holdout_buyers": 0,
        "holdout_revenue": "0.00",
        "revenue_per_held_out": None,
        "lift": None,
        "incremental_revenue": None,
    }


def test_a_campaign_is_scheduled_with_scheduled_at_and_cancelled(api_client, everyone):
    campaign = campaign_draft(everyone)
    when = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    scheduled = post(
        api_client, f"/api/v1/campaigns/{campaign.pk}/send", {"scheduled_at": when.isoformat()}
    )
    cancelled = post(api_client, f"/api/v1/campaigns/{campaign.pk}/cancel")
    again = post(api_client, f"/api/v1/campaigns/{campaign.pk}/cancel")

    assert scheduled.status_code == 202
    assert scheduled.json()["status"] == "scheduled"
    assert datetime.fromisoformat(scheduled.json()["scheduled_at"]) == when
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert Delivery.objects.filter(campaign=campaign).count() == 0


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-01T09:00:00",  # no offset: which 9 o'clock?
        0,  # a number is not read as a Unix time
        "tomorrow",
        "9999-12-31T23:59:59-05:00",  # past any calendar in UTC
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_a_bad_scheduled_at_is_a_422_naming_it_and_nothing_is_sent(api_client, everyone, value):
    campaign = campaign_draft(everyone)

    response = post(api_client, f"/api/v1/campaigns/{campaign.pk}/send", {"scheduled_at": value})

    assert response.status_code == 422
    body = response.json()
    named = body.get("field") or body["detail"][0]["loc"][-1]
    assert named == "scheduled_at"
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_schedule_more_than_a_year_ahead_is_a_422(api_client, everyone):
    campaign = campaign_draft(everyone)
    far = datetime.now(UTC) + timedelta(days=400)

    response = post(
        api_client, f"/api/v1/campaigns/{campaign.pk}/send", {"scheduled_at": far.isoformat()}
    )

    assert response.status_code == 422
    assert response.json()["field"] == "scheduled_at"
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_cancelling_a_draft_is_a_409(api_client, everyone):
    campaign = campaign_draft(everyone)

    response = post(api_client, f"/api/v1/campaigns/{campaign.pk}/cancel")

    assert response.status_code == 409
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


# --- The delivery log ---------------------------------------------------------------------


def test_the_delivery_log_is_paged_and_filtered_by_status(
    api_client, everyone, django_capture_on_commit_callbacks
):
    customers = CustomerFactory.create_batch(5)
    campaign = campaign_draft(everyone, holdout_percent=40)
    with django_capture_on_commit_callbacks(execute=True):
        post(api_client, f"/api/v1/campaigns/{campaign.pk}/send")
    path = f"/api/v1/campaigns/{campaign.pk}/deliveries"

    everything = api_client.get(path).json()
    sent = api_client.get(f"{path}?status=sent&page_size=2").json()
    held = api_client.get(f"{path}?status=held_out").json()
    failed = api_client.get(f"{path}?status=failed").json()
    bad = api_client.get(f"{path}?status=bounced")

    assert everything["count"] == 5
    assert {item["customer_id"] for item in everything["items"]} == {c.pk for c in customers}
    ids = [item["id"] for item in everything["items"]]
    assert ids == sorted(ids)
    assert (sent["count"], len(sent["items"])) == (3, 2)
    assert {item["status"] for item in sent["items"]} == {"sent"}
    assert sent["items"][0]["body"].startswith("Hi ")
    assert sent["items"][0]["sent_at"] is not None
    assert held["count"] == 2
    assert held["items"][0]["body"] == ""
    assert failed == {"items": [], "count": 0}
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "status"]
    assert bad.json()["message"] == "Invalid input: status"


# --- The AI summary -------------------------------------------------------------------------


def test_the_summary_is_queued_with_202_written_and_shown_in_the_detail(
    api_client, everyone, settings, django_capture_on_commit_callbacks
):
    settings.AI_PROVIDER = "offline"
    CustomerFactory.create_batch(3)
    campaign = campaign_draft(everyone)
    with django_capture_on_commit_callbacks(execute=True):
        post(api_client, f"/api/v1/campaigns/{campaign.pk}/send")

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = post(api_client, f"/api/v1/campaigns/{campaign.pk}/summary")
    assert response.status_code == 202
    assert response.json()["summary"]["status"] == "queued"
    for callback in queued:
        callback()
    summary = api_client.get(f"/api/v1/campaigns/{campaign.pk}").json()["summary"]

    assert (summary["status"], summary["provider"], summary["error"]) == (
        "succeeded",
        "offline",
        "",
    )
    assert summary["written_at"] is not None
    assert summary["content"]["headline"] == (
        "0 of 3 recipients bought within 14 days, spending ₹0"
    )
    assert summary["content"]["figures"]["deliveries"]["sent"] == 3


def test_a_summary_before_launch_is_a_409(api_client, everyone):
    campaign = campaign_draft(everyone)

    response = post(api_client, f"/api/v1/campaigns/{campaign.pk}/summary")

    assert response.status_code == 409
    assert Campaign.objects.get(pk=campaign.pk).summary_status == ""


# --- Roles and missing campaigns ---------------------------------------------------------

WRITES = [
    ("post", "/api/v1/campaigns", "create"),
    ("patch", "/api/v1/campaigns/{id}", "edit"),
    ("post", "/api/v1/campaigns/{id}/send", "send"),
    ("post", "/api/v1/campaigns/{id}/cancel", "cancel"),
    ("post", "/api/v1/campaigns/{id}/summary", "summary"),
]
READS = [
    ("get", "/api/v1/campaigns/{id}"),
    ("get", "/api/v1/campaigns/{id}/deliveries"),
    ("post", "/api/v1/campaigns/{id}/preview"),
]


def call(client: Client, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    if method == "get":
        return client.get(path)
    if method == "patch":
        return patch(client, path, body or {"name": "Changed"})
    return post(client, path, body)


@pytest.mark.parametrize(("method", "path", "what"), WRITES)
def test_a_viewer_cannot_write_and_nothing_changes(viewer_api, everyone, method, path, what):
    campaign = campaign_draft(everyone)
    before = Campaign.objects.values().get(pk=campaign.pk)
    body = new_campaign(everyone) if what == "create" else None

    response = call(viewer_api, method, path.format(id=campaign.pk), body)

    assert response.status_code == 403
    assert response.json() == {"detail": "This needs the marketer role."}
    assert list(Campaign.objects.values()) == [before]


@pytest.mark.parametrize("role", [Role.MARKETER, Role.ADMIN])
def test_marketers_and_admins_write(everyone, role, django_capture_on_commit_callbacks):
    client = client_for(role)
    CustomerFactory()

    created = post(client, "/api/v1/campaigns", new_campaign(everyone))
    path = f"/api/v1/campaigns/{created.json()['id']}"
    edited = patch(client, path, {"name": "Changed"})
    with django_capture_on_commit_callbacks(execute=True):
        sent = post(client, f"{path}/send")
    summarised = post(client, f"{path}/summary")

    assert [created.status_code, edited.status_code, sent.status_code] == [201, 200, 202]
    assert summarised.status_code == 202


@pytest.mark.parametrize(("method", "path"), READS)
def test_a_viewer_reads(viewer_api, everyone, method, path):
    campaign = campaign_draft(everyone)

    response = call(viewer_api, method, path.format(id=campaign.pk))

    assert response.status_code == 200
    assert viewer_api.get("/api/v1/campaigns").json()["count"] == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [(method, path) for method, path, _what in WRITES[1:]] + READS,
)
def test_a_missing_campaign_is_a_404(api_client, db, method, path):
    response = call(api_client, method, path.format(id=MISSING))

    assert response.status_code == 404
    assert response.json() == {"detail": "No such campaign."}


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/campaigns"), ("post", "/api/v1/campaigns/1/send")],
)
def test_without_a_token_it_is_a_401(client, db, method, path):
    response = call(client, method, path)

    assert response.status_code == 401
    assert set(response.json()) == {"detail"}
