"""The audit trail: what segments, imports and campaigns record (who, from where, what), the
admin page and API that browse it, and that nothing in the app can change or delete an entry."""

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from minicrm.accounts.models import AuditEvent, AuditEventImmutableError, Role, User
from minicrm.accounts.services import api_token_create, audit_record
from minicrm.campaigns.models import Campaign
from minicrm.campaigns.services import campaign_create, campaign_send
from minicrm.imports.models import Import
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db

IP = "203.0.113.7"
EVERYONE = {"match": "all", "conditions": []}
BUYERS = {"match": "all", "conditions": [{"field": "order_count", "operator": "gte", "value": 1}]}
CSV = "external_id,email\nC-1,a@example.com\nC-2,b@example.com\n"


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def marketer_user() -> User:
    return UserFactory(email="mia@example.com", role=Role.MARKETER)


@pytest.fixture
def page_client(marketer_user: User) -> Client:
    """A marketer's browser session coming from IP."""
    client = Client(REMOTE_ADDR=IP)
    client.force_login(marketer_user)
    return client


@pytest.fixture
def token_client(marketer_user: User) -> Client:
    """A marketer's API client coming from IP."""
    _token, raw = api_token_create(user=marketer_user, name="audit")
    return Client(REMOTE_ADDR=IP, headers={"Authorization": f"Bearer {raw}"})


def only_event(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [str(event) for event in events]
    return events[0]


def assert_recorded(action: str, actor: User, target: str) -> AuditEvent:
    event = only_event(action)
    assert (event.actor_id, event.ip_address, event.target) == (actor.pk, IP, target)
    return event


def post_json(client: Client, path: str, body: Any = None) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json")


# ---- What is recorded ---------------------------------------------------------------------


def test_segment_created_changed_and_deleted_through_the_api(
    token_client: Client, marketer_user: User
) -> None:
    created = post_json(token_client, "/api/v1/segments", {"name": "VIP", "rules": EVERYONE})
    segment_id = created.json()["id"]
    target = f"Segment “VIP” (#{segment_id})"
    changed = token_client.patch(
        f"/api/v1/segments/{segment_id}",
        json.dumps({"name": "VIP buyers", "rules": BUYERS}),
        content_type="application/json",
    )
    deleted = token_client.delete(f"/api/v1/segments/{segment_id}")

    assert (created.status_code, changed.status_code, deleted.status_code) == (201, 200, 204)
    assert_recorded(AuditEvent.Action.SEGMENT_CREATED, marketer_user, target)
    change = assert_recorded(
        AuditEvent.Action.SEGMENT_CHANGED, marketer_user, f"Segment “VIP buyers” (#{segment_id})"
    )
    assert change.details == {"changed": ["name", "rules"], "old_name": "VIP"}
    assert_recorded(
        AuditEvent.Action.SEGMENT_DELETED, marketer_user, f"Segment “VIP buyers” (#{segment_id})"
    )


def test_a_patch_that_changes_nothing_records_nothing(token_client: Client) -> None:
    segment = segment_create(name="Same", rules=parse_rules(EVERYONE), created_by=None)

    response = token_client.patch(
        f"/api/v1/segments/{segment.pk}",
        json.dumps({"name": "Same", "rules": EVERYONE}),
        content_type="application/json",
    )

    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SEGMENT_CHANGED).exists()


def test_a_refused_segment_records_nothing(token_client: Client) -> None:
    response = post_json(token_client, "/api/v1/segments", {"name": "Bad", "rules": {"x": 1}})

    assert response.status_code == 422
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SEGMENT_CREATED).exists()


def test_segment_created_changed_and_deleted_on_the_pages(
    page_client: Client, marketer_user: User
) -> None:
    page_client.post(
        reverse("segments:new"),
        {"name": "Loyal", "description": "", "rules": json.dumps(EVERYONE)},
    )
    segment = Segment.objects.get()
    page_client.post(
        reverse("segments:edit", args=[segment.pk]),
        {"name": "Loyal", "description": "Bought twice", "rules": json.dumps(EVERYONE)},
    )
    page_client.post(reverse("segments:delete", args=[segment.pk]))

    target = f"Segment “Loyal” (#{segment.pk})"
    assert_recorded(AuditEvent.Action.SEGMENT_CREATED, marketer_user, target)
    change = assert_recorded(AuditEvent.Action.SEGMENT_CHANGED, marketer_user, target)
    assert change.details == {"changed": ["description"]}
    assert_recorded(AuditEvent.Action.SEGMENT_DELETED, marketer_user, target)
    assert not Segment.objects.exists()


def test_an_import_started_through_the_api(token_client: Client, marketer_user: User) -> None:
    response = token_client.post(
        "/api/v1/imports",
        {"kind": "customers", "file": SimpleUploadedFile("shop.csv", CSV.encode())},
    )

    assert response.status_code == 202
    import_id = response.json()["id"]
    event = assert_recorded(
        AuditEvent.Action.IMPORT_STARTED, marketer_user, f"Import “shop.csv” (#{import_id})"
    )
    assert event.details == {"kind": "customers", "file": "shop.csv", "bytes": len(CSV)}


def test_an_import_starts_on_the_page_when_its_mapping_is_confirmed(
    page_client: Client, marketer_user: User
) -> None:
    page_client.post(
        reverse("imports:upload"),
        {"kind": "customers", "file": SimpleUploadedFile("list.csv", CSV.encode())},
    )
    uploaded = Import.objects.get()
    # Uploaded, waiting for its mapping: not started yet.
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.IMPORT_STARTED).exists()

    page_client.post(
        reverse("imports:mapping", args=[uploaded.pk]),
        {
            "kind": "customers",
            "key": "external_id",
            "column-external_id": "external_id",
            "column-email": "email",
        },
    )

    assert Import.objects.get().status == Import.Status.QUEUED
    assert_recorded(
        AuditEvent.Action.IMPORT_STARTED, marketer_user, f"Import “list.csv” (#{uploaded.pk})"
    )


def _draft(name: str = "Spring") -> Campaign:
    segment = segment_create(name=f"All for {name}", rules=parse_rules(EVERYONE), created_by=None)
    return campaign_create(
        created_by=None,
        name=name,
        segment_id=segment.pk,
        subject="Hello",
        template="Hi {{ first_name }} {{ unsubscribe_url }}",
    )


def test_a_campaign_scheduled_then_cancelled_through_the_api(
    token_client: Client, marketer_user: User
) -> None:
    campaign = _draft()
    when = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    scheduled = post_json(
        token_client, f"/api/v1/campaigns/{campaign.pk}/send", {"scheduled_at": when.isoformat()}
    )
    cancelled = post_json(token_client, f"/api/v1/campaigns/{campaign.pk}/cancel")

    assert (scheduled.status_code, cancelled.status_code) == (202, 200)
    target = f"Campaign “Spring” (#{campaign.pk})"
    event = assert_recorded(AuditEvent.Action.CAMPAIGN_SCHEDULED, marketer_user, target)
    assert event.details == {
        "segment": "All for Spring",
        "channel": "log",
        "audience_size": 0,
        "scheduled_at": when.isoformat(),
    }
    cancel = assert_recorded(AuditEvent.Action.CAMPAIGN_CANCELLED, marketer_user, target)
    assert cancel.details == {"deliveries_skipped": 0}
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN_SENT).exists()


def test_a_campaign_sent_through_the_api(token_client: Client, marketer_user: User) -> None:
    campaign = _draft()

    response = post_json(token_client, f"/api/v1/campaigns/{campaign.pk}/send")

    assert response.status_code == 202
    event = assert_recorded(
        AuditEvent.Action.CAMPAIGN_SENT, marketer_user, f"Campaign “Spring” (#{campaign.pk})"
    )
    assert event.details["audience_size"] == 0


def test_a_campaign_sent_and_cancelled_on_the_pages(
    page_client: Client, marketer_user: User
) -> None:
    segment = segment_create(name="Everyone", rules=parse_rules(EVERYONE), created_by=None)
    page_client.post(
        reverse("campaigns:new"),
        {
            "name": "Launch",
            "segment": segment.pk,
            "channel": "log",
            "subject": "",
            "template": "Hi {{ first_name | default('there') }}! {{ unsubscribe_url }}",
            "holdout_percent": "0",
            "action": "send",
        },
    )
    campaign = Campaign.objects.get()
    page_client.post(reverse("campaigns:cancel", args=[campaign.pk]))

    target = f"Campaign “Launch” (#{campaign.pk})"
    assert_recorded(AuditEvent.Action.CAMPAIGN_SENT, marketer_user, target)
    assert_recorded(AuditEvent.Action.CAMPAIGN_CANCELLED, marketer_user, target)


def test_a_send_refused_records_nothing(token_client: Client) -> None:
    campaign = _draft()
    campaign_send(campaign_id=campaign.pk)
    before = AuditEvent.objects.count()

    again = post_json(token_client, f"/api/v1/campaigns/{campaign.pk}/send")

    assert again.status_code == 409
    assert AuditEvent.objects.count() == before


# ---- Append-only --------------------------------------------------------------------------


def test_an_event_cannot_be_changed_or_deleted() -> None:
    event = audit_record(action=AuditEvent.Action.SIGN_IN, target="ada@example.com")

    event.target = "someone else"
    with pytest.raises(AuditEventImmutableError):
        event.save()
    with pytest.raises(AuditEventImmutableError):
        event.delete()
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(target="someone else")
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AuditEventImmutableError):
        # An unsaved copy with the same pk would otherwise UPDATE the stored row.
        AuditEvent(pk=event.pk, action=AuditEvent.Action.SIGN_OUT).save()

    stored = AuditEvent.objects.get()
    assert (stored.action, stored.target) == (AuditEvent.Action.SIGN_IN, "ada@example.com")


def test_deleting_a_user_keeps_their_events() -> None:
    user = UserFactory()
    audit_record(action=AuditEvent.Action.SIGN_IN, actor=user, target=user.email)

    user.delete()

    assert AuditEvent.objects.get().actor is None


def test_the_audit_log_is_not_in_django_admin() -> None:
    from django.conf import settings

    assert "django.contrib.admin" not in settings.INSTALLED_APPS


def test_no_route_writes_to_the_audit_page(admin_client: Client) -> None:
    assert admin_client.post(reverse("accounts:audit")).status_code == 405


# ---- The page -----------------------------------------------------------------------------


def test_only_admins_see_the_page(viewer_client: Client) -> None:
    anonymous = Client().get(reverse("accounts:audit"))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("accounts:login"))
    assert viewer_client.get(reverse("accounts:audit")).status_code == 403
    marketer = Client()
    marketer.force_login(UserFactory(role=Role.MARKETER))
    assert marketer.get(reverse("accounts:audit")).status_code == 403


def _events() -> tuple[User, User]:
    ada, bob = AdminFactory(email="ada@example.com"), UserFactory(email="bob@example.com")
    audit_record(action=AuditEvent.Action.SEGMENT_CREATED, actor=bob, target="Segment “VIP” (#1)")
    audit_record(
        action=AuditEvent.Action.SEGMENT_CHANGED,
        actor=bob,
        target="Segment “VIP” (#1)",
        details={"changed": ["name", "rules"], "old_name": "Big"},
        ip_address="198.51.100.4",
    )
    audit_record(action=AuditEvent.Action.SIGN_IN, actor=ada, target="ada@example.com")
    return ada, bob


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return body.split("<tr>")[1:]


def test_the_page_lists_newest_first_with_who_what_where_and_details(admin_client: Client) -> None:
    _events()

    response = admin_client.get(reverse("accounts:audit"))

    html = response.content.decode()
    rows = _rows(html)
    assert response.status_code == 200
    assert len(rows) == 3
    assert "Signed in" in rows[0]
    assert "Segment changed" in rows[1]
    assert "bob@example.com" in rows[1]
    assert "198.51.100.4" in rows[1]
    assert "changed: name, rules · was named: Big" in rows[1]
    assert "Segment created" in rows[2]
    assert "style=" not in html.split("<main", 1)[-1]


def test_times_are_shown_in_the_configured_time_zone(admin_client: Client, settings: Any) -> None:
    settings.TIME_ZONE = "Asia/Kolkata"
    event = audit_record(action=AuditEvent.Action.SIGN_IN, target="x")
    local = event.created_at.astimezone(ZoneInfo("Asia/Kolkata"))

    html = admin_client.get(reverse("accounts:audit")).content.decode()

    assert f'<time datetime="{local.isoformat()}"' in html
    assert f">{local:%-d %b %Y, %H:%M:%S}</time>" in html
    assert "When (IST)" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "segment_created"}, ["Segment created"]),
        ({"target": "vip", "action": ""}, ["Segment changed", "Segment created"]),
        ({"target": "ada@"}, ["Signed in"]),
    ],
)
def test_the_page_filters_by_action_and_target(
    admin_client: Client, query: dict[str, str], expected: list[str]
) -> None:
    _events()

    rows = _rows(admin_client.get(reverse("accounts:audit"), query).content.decode())

    assert [next(label for label in expected if label in row) for row in rows] == expected


def test_the_page_filters_by_actor(admin_client: Client) -> None:
    _ada, bob = _events()

    html = admin_client.get(reverse("accounts:audit"), {"actor": bob.pk}).content.decode()

    assert len(_rows(html)) == 2
    assert f'<option value="{bob.pk}" selected>bob@example.com</option>' in html


def test_the_page_filters_by_dates_as_days_in_the_configured_zone(
    admin_client: Client, settings: Any
) -> None:
    settings.TIME_ZONE = "Asia/Kolkata"
    zone = ZoneInfo("Asia/Kolkata")
    event = audit_record(action=AuditEvent.Action.SIGN_IN, target="late")
    # 23:30 on 1 March in Kolkata is 18:00 UTC: it belongs to 1 March, not 2 March.
    moment = datetime(2026, 3, 1, 23, 30, tzinfo=zone)
    AuditEvent._base_manager.filter(pk=event.pk).update(created_at=moment)

    def count(**query: str) -> int:
        return len(_rows(admin_client.get(reverse("accounts:audit"), query).content.decode()))

    assert count(date_from="2026-03-01", date_to="2026-03-01") == 1
    assert count(date_from="2026-03-02") == 0
    assert count(date_to="2026-02-28") == 0


def test_bad_filters_are_a_400_naming_the_field(admin_client: Client) -> None:
    bad_date = admin_client.get(reverse("accounts:audit"), {"date_from": "yesterday"})
    bad_range = admin_client.get(
        reverse("accounts:audit"), {"date_from": "2026-03-02", "date_to": "2026-03-01"}
    )
    bad_action = admin_client.get(reverse("accounts:audit"), {"action": "hack"})
    far = admin_client.get(reverse("accounts:audit"), {"date_to": "9999-12-31"})
    stranger = admin_client.get(reverse("accounts:audit"), {"actor": "9223372036854775808"})

    assert bad_date.status_code == bad_range.status_code == bad_action.status_code == 400
    assert far.status_code == stranger.status_code == 400
    assert "To: Ensure this value is less than or equal to 2999-12-31." in far.content.decode()
    assert "Who: Select a valid choice." in stranger.content.decode()
    assert "From: Enter a valid date." in bad_date.content.decode()
    assert "To: The end date comes before the start date." in bad_range.content.decode()
    assert "Action: Select a valid choice." in bad_action.content.decode()


def test_the_page_is_paginated_and_keeps_the_filters(admin_client: Client) -> None:
    for number in range(55):
        audit_record(action=AuditEvent.Action.SIGN_IN, target=f"user{number}@example.com")
    audit_record(action=AuditEvent.Action.SIGN_OUT, target="other")

    first = admin_client.get(reverse("accounts:audit"), {"action": "sign_in"}).content.decode()
    second = admin_client.get(
        reverse("accounts:audit"), {"action": "sign_in", "page": "2"}
    ).content.decode()

    assert len(_rows(first)) == 50
    assert "user54@example.com" in _rows(first)[0]
    assert 'href="?action=sign_in&amp;page=2"' in first
    assert [row.count("Signed in") for row in _rows(second)] == [1] * 5
    assert "user0@example.com" in _rows(second)[-1]


def test_settings_shows_the_latest_five_and_links_to_the_page(admin_client: Client) -> None:
    for number in range(7):
        audit_record(action=AuditEvent.Action.SIGN_IN, target=f"user{number}@example.com")

    html = admin_client.get(reverse("accounts:settings")).content.decode()

    assert f'href="{reverse("accounts:audit")}"' in html
    assert "user6@example.com" in html
    assert "user2@example.com" in html
    assert "user1@example.com" not in html


# ---- The API ------------------------------------------------------------------------------


@pytest.fixture
def admin_api() -> Client:
    _token, raw = api_token_create(user=AdminFactory(email="root@example.com"), name="audit")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_the_api_lists_filters_and_paginates(admin_api: Client) -> None:
    _ada, bob = _events()

    everything = admin_api.get("/api/v1/audit-events?page_size=2")
    by_bob = admin_api.get(f"/api/v1/audit-events?actor_id={bob.pk}&action=segment_changed")

    assert everything.status_code == 200
    body = everything.json()
    # The admin's own token creation is recorded too: 4 in all.
    assert body["count"] == 4
    assert [item["action"] for item in body["items"]] == ["sign_in", "segment_changed"]
    assert by_bob.json() == {
        "count": 1,
        "items": [
            {
                "id": by_bob.json()["items"][0]["id"],
                "created_at": by_bob.json()["items"][0]["created_at"],
                "action": "segment_changed",
                "action_label": "Segment changed",
                "actor_id": bob.pk,
                "actor_email": "bob@example.com",
                "target": "Segment “VIP” (#1)",
                "ip_address": "198.51.100.4",
                "details": {"changed": ["name", "rules"], "old_name": "Big"},
            }
        ],
    }


def test_the_api_filters_by_target_and_dates(admin_api: Client) -> None:
    _events()
    today = timezone.localdate().isoformat()

    by_target = admin_api.get("/api/v1/audit-events?target=VIP")
    today_only = admin_api.get(f"/api/v1/audit-events?date_from={today}&date_to={today}")
    future = admin_api.get("/api/v1/audit-events?date_from=2999-01-01")

    assert by_target.json()["count"] == 2
    assert today_only.json()["count"] == 4
    assert future.json()["count"] == 0


def test_the_api_is_for_admins_only(api_client: Client, viewer_client: Client) -> None:
    assert api_client.get("/api/v1/audit-events").status_code == 403
    assert viewer_client.get("/api/v1/audit-events").status_code == 403
    assert Client().get("/api/v1/audit-events").status_code == 401


def test_the_api_names_a_bad_filter(admin_api: Client) -> None:
    response = admin_api.get(
        "/api/v1/audit-events?action=hack&date_from=soon&date_to=9999-12-31"
        "&actor_id=9223372036854775808"
    )

    assert response.status_code == 422
    locations = [error["loc"] for error in response.json()["detail"]]
    assert ["query", "action"] in locations
    assert ["query", "date_from"] in locations
    assert ["query", "date_to"] in locations
    assert ["query", "actor_id"] in locations


def test_the_api_has_no_write_method(admin_api: Client) -> None:
    assert admin_api.post("/api/v1/audit-events").status_code == 405
    assert admin_api.delete("/api/v1/audit-events").status_code == 405
