"""The segments REST API: preview, CRUD with roles, members, CSV export, and 422 rule errors."""

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from minicrm.accounts.models import Role
from minicrm.accounts.services import api_token_create
from minicrm.core.limits import MAX_RULE_CONDITIONS
from minicrm.segments.models import Segment
from minicrm.segments.rules import format_path, parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory, UserFactory

BIG = {"match": "all", "conditions": [{"field": "total_spend", "operator": "gte", "value": 100}]}


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def viewer_client(db: None) -> Client:
    _token, raw = api_token_create(user=UserFactory(role=Role.VIEWER), name="viewer")
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def spenders(db: None) -> None:
    CustomerFactory(
        external_id="big", first_name="Big", last_name="One", total_spend=500, order_count=2
    )
    CustomerFactory(external_id="small", total_spend=5, order_count=1)


def test_preview_returns_count_sample_funnel_and_summary(
    api_client: Client, spenders: None
) -> None:
    response = post(api_client, "/api/v1/segments/preview", {"rules": BIG})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["total_customers"] == 2
    assert [row["name"] for row in body["sample"]] == ["Big One"]
    assert Decimal(body["sample"][0]["total_spend"]) == Decimal("500.00")
    assert body["funnel"] == [{"label": "Total spend at least ₹100", "count": 1}]
    assert body["summary"] == "Total spend at least ₹100"


def test_preview_can_skip_the_funnel(viewer_client: Client, spenders: None) -> None:
    response = post(viewer_client, "/api/v1/segments/preview?funnel=false", {"rules": BIG})
    assert response.status_code == 200
    assert response.json()["funnel"] is None


def one(condition: dict[str, Any]) -> dict[str, Any]:
    return {"match": "all", "conditions": [condition]}


def deep(levels: int) -> dict[str, Any]:
    group: dict[str, Any] = {"match": "all", "conditions": []}
    for _ in range(levels - 1):
        group = {"match": "all", "conditions": [group]}
    return group


@pytest.mark.parametrize(
    ("rules", "path"),
    [
        (one({"field": "age", "operator": "gt", "value": 1}), "conditions[0].field"),
        (one({"field": "city", "operator": "gt", "value": "x"}), "conditions[0].operator"),
        (one({"field": "order_count", "operator": "gt", "value": "many"}), "conditions[0].value"),
        (
            one({"field": "signup_date", "operator": "on", "value": "2025-02-30"}),
            "conditions[0].value",
        ),
        (one({"field": "total_spend", "operator": "between", "value": [1]}), "conditions[0].value"),
        (deep(6), "conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]"),
        (
            {
                "match": "all",
                "conditions": [{"field": "city", "operator": "is_empty"}]
                * (MAX_RULE_CONDITIONS + 1),
            },
            "",
        ),
        ({"match": "all", "conditions": "all of them"}, "conditions"),
        (
            {"match": "any", "conditions": [{"match": "all", "conditions": [{"field": "tags"}]}]},
            "conditions[0].conditions[0].operator",
        ),
    ],
)
def test_invalid_rules_are_422_naming_the_path(api_client: Client, rules: Any, path: str) -> None:
    response = post(api_client, "/api/v1/segments/preview", {"rules": rules})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"][0]["path"] == path
    assert body["detail"][0]["loc"][:2] == ["body", "rules"]
    # The rest of `loc` is the parser's own parts (ints for list indexes), not a re-parse.
    assert format_path(body["detail"][0]["loc"][2:]) == path
    assert all(isinstance(part, int) for part in body["detail"][0]["loc"][3::2])
    assert body["detail"][0]["type"] == "rules"
    assert body["message"].startswith(f"Invalid rules: {path or 'rules'}: ")


def test_rules_that_are_not_an_object_are_422(api_client: Client) -> None:
    response = post(api_client, "/api/v1/segments/preview", {"rules": "everyone"})
    assert response.status_code == 422
    assert post(api_client, "/api/v1/segments/preview", {}).status_code == 422


def test_create_get_update_delete(api_client: Client, spenders: None) -> None:
    created = post(
        api_client, "/api/v1/segments", {"name": "Big", "description": "d", "rules": BIG}
    )
    assert created.status_code == 201
    segment = created.json()
    assert segment["name"] == "Big"
    assert segment["summary"] == "Total spend at least ₹100"
    assert segment["created_by"].endswith("@example.com")
    path = f"/api/v1/segments/{segment['id']}"
    assert api_client.get(path).json()["rules"] == BIG
    listing = api_client.get("/api/v1/segments").json()
    assert (listing["count"], listing["items"][0]["name"]) == (1, "Big")

    patched = api_client.patch(
        path,
        json.dumps({"name": "Bigger", "rules": {"match": "any", "conditions": []}}),
        content_type="application/json",
    )
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["summary"]) == ("Bigger", "All customers")

    assert api_client.delete(path).status_code == 204
    assert api_client.get(path).status_code == 404
    assert not Segment.objects.exists()


def test_create_conflicts_and_bad_rules_change_nothing(api_client: Client, marketer: Any) -> None:
    segment_create(name="Taken", rules=parse_rules(BIG), created_by=marketer)
    conflict = post(api_client, "/api/v1/segments", {"name": "taken", "rules": BIG})
    assert conflict.status_code == 409
    assert conflict.json() == {"detail": 'A segment named "taken" already exists.', "field": "name"}
    bad = one({"field": "city", "operator": "eq", "value": 3})
    invalid = post(api_client, "/api/v1/segments", {"name": "New", "rules": bad})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["path"] == "conditions[0].value"
    segment = Segment.objects.get()
    patch = api_client.patch(
        f"/api/v1/segments/{segment.pk}",
        json.dumps({"rules": bad, "name": "Other"}),
        content_type="application/json",
    )
    assert patch.status_code == 422
    segment.refresh_from_db()
    assert (segment.name, segment.rules) == ("Taken", BIG)
    assert list(Segment.objects.values_list("name", flat=True)) == ["Taken"]


def test_viewers_read_but_do_not_write(viewer_client: Client, marketer: Any) -> None:
    segment = segment_create(name="S", rules=parse_rules(BIG), created_by=marketer)
    path = f"/api/v1/segments/{segment.pk}"
    assert viewer_client.get(path).status_code == 200
    assert post(viewer_client, "/api/v1/segments", {"name": "N", "rules": BIG}).status_code == 403
    patch = viewer_client.patch(path, json.dumps({"name": "N"}), content_type="application/json")
    assert patch.status_code == 403
    assert viewer_client.delete(path).status_code == 403
    assert Segment.objects.get().name == "S"


def test_anonymous_is_401(client: Client) -> None:
    assert post(client, "/api/v1/segments/preview", {"rules": BIG}).status_code == 401


def test_members_are_paged(api_client: Client, marketer: Any) -> None:
    for index in range(3):
        CustomerFactory(external_id=f"m{index}", total_spend=200, order_count=1)
    segment = segment_create(name="S", rules=parse_rules(BIG), created_by=marketer)
    page = api_client.get(f"/api/v1/segments/{segment.pk}/customers?page=2&page_size=2").json()
    assert page["count"] == 3
    assert [item["external_id"] for item in page["items"]] == ["m2"]
    assert api_client.get("/api/v1/segments/999999/customers").status_code == 404


def test_export_streams_csv_safe_for_spreadsheets(api_client: Client, marketer: Any) -> None:
    CustomerFactory(
        external_id="x1", first_name="=cmd()", city="Pune", total_spend=300, order_count=2
    )
    segment = segment_create(name="Big spenders!", rules=parse_rules(BIG), created_by=marketer)
    response = api_client.get(f"/api/v1/segments/{segment.pk}/export")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="segment-big-spenders-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["id", "external_id", "email", "first_name"]
    assert rows[0][-1] == "tags"
    assert len(rows) == 2
    assert rows[1][1:4] == ["x1", "x1@example.com", "'=cmd()"]


def test_export_has_consent_and_unsubscribed_columns(api_client: Client, marketer: Any) -> None:
    gone = datetime(2025, 5, 6, 7, 8, tzinfo=UTC)
    CustomerFactory(external_id="yes", total_spend=300, order_count=2, marketing_consent=True)
    CustomerFactory(external_id="no", total_spend=300, order_count=2, marketing_consent=False)
    CustomerFactory(external_id="gone", total_spend=300, order_count=2, unsubscribed_at=gone)
    segment = segment_create(name="Consent", rules=parse_rules(BIG), created_by=marketer)
    response = api_client.get(f"/api/v1/segments/{segment.pk}/export")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header = rows[0]
    found = {
        row[1]: (row[header.index("marketing_consent")], row[header.index("unsubscribed_at")])
        for row in rows[1:]
    }
    assert found == {
        "yes": ("true", ""),
        "no": ("false", ""),
        "gone": ("true", "2025-05-06T07:08:00+00:00"),
    }
