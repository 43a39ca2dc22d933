"""The segment pages: list, segment page with its tabs, rule builder, audience fragments."""

import html as html_lib
import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from minicrm.accounts.models import User
from minicrm.customers.models import Customer
from minicrm.segments.compiler import today_in_zone
from minicrm.segments.models import Segment, SegmentSize
from minicrm.segments.rules import FIELDS, parse_rules
from minicrm.segments.services import rules_hash, segment_create
from minicrm.segments.views import builder_meta
from tests.factories import CustomerFactory

BIG_SPENDERS = {
    "match": "all",
    "conditions": [{"field": "total_spend", "operator": "gt", "value": 1000}],
}
NESTED = {
    "match": "all",
    "conditions": [
        {"field": "total_spend", "operator": "gt", "value": 1000},
        {
            "match": "any",
            "conditions": [
                {"field": "city", "operator": "eq", "value": "Pune"},
                {"field": "order_count", "operator": "gte", "value": 5},
            ],
        },
    ],
}


def customer(
    first_name: str, *, spend: str, orders: int = 1, city: str = "Mumbai", last_name: str = "Test"
) -> Customer:
    last_order = timezone.now() - timedelta(days=3) if orders else None
    return CustomerFactory(
        first_name=first_name,
        last_name=last_name,
        email=f"{first_name.lower()}@example.com",
        city=city,
        total_spend=Decimal(spend),
        order_count=orders,
        first_order_at=last_order,
        last_order_at=last_order,
    )


@pytest.fixture
def people(db: None) -> dict[str, Customer]:
    return {
        "asha": customer("Asha", spend="5000.00", orders=6, city="Mumbai"),
        "ravi": customer("Ravi", spend="1500.00", orders=2, city="Pune"),
        "meera": customer("Meera", spend="1200.00", orders=1, city="Delhi"),
        "kiran": customer("Kiran", spend="0.00", orders=0, city="Pune"),
    }


@pytest.fixture
def segment(marketer: User) -> Segment:
    return segment_create(
        name="Big spenders",
        description="Over a thousand",
        rules=parse_rules(BIG_SPENDERS),
        created_by=marketer,
    )


def preview(client: Client, rules: object) -> str:
    response = client.post(reverse("segments:preview"), {"rules": json.dumps(rules)})
    assert response.status_code == 200
    return response.content.decode()


def builder_rules(html: str) -> object:
    """The rules the page hands the builder (the hidden input the script reads and writes)."""
    match = re.search(r'<input type="hidden" name="rules" value="([^"]*)" id="rules-input">', html)
    assert match is not None
    return json.loads(html_lib.unescape(match.group(1)))


def day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def json_script(html: str, element_id: str) -> object:
    start = html.index(f'id="{element_id}"')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


# ---- access ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("segments:list", {}), ("segments:new", {}), ("segments:detail", {"pk": 1})],
)
def test_anonymous_visitors_are_sent_to_sign_in(client: Client, name: str, kwargs: dict) -> None:
    url = reverse(name, kwargs=kwargs)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={url}"


@pytest.mark.django_db
def test_anonymous_preview_is_sent_to_sign_in(client: Client) -> None:
    response = client.post(reverse("segments:preview"), {"rules": json.dumps(BIG_SPENDERS)})
    assert response.status_code == 302


def test_viewer_gets_no_builder(viewer_client: Client, segment: Segment) -> None:
    assert viewer_client.get(reverse("segments:new")).status_code == 403
    assert viewer_client.get(reverse("segments:edit", args=[segment.pk])).status_code == 403
    preview_response = viewer_client.post(
        reverse("segments:preview"), {"rules": json.dumps(BIG_SPENDERS)}
    )
    assert preview_response.status_code == 403


def test_viewer_cannot_save_edit_or_delete(viewer_client: Client, segment: Segment) -> None:
    data = {"name": "Sneaky", "description": "", "rules": json.dumps(BIG_SPENDERS)}
    assert viewer_client.post(reverse("segments:new"), data).status_code == 403
    assert viewer_client.post(reverse("segments:edit", args=[segment.pk]), data).status_code == 403
    assert viewer_client.post(reverse("segments:delete", args=[segment.pk])).status_code == 403
    assert list(Segment.objects.values_list("name", flat=True)) == ["Big spenders"]


# ---- list --------------------------------------------------------------------------------------


def test_list_shows_each_segment_with_size_and_last_count(
    marketer_client: Client, segment: Segment
) -> None:
    Segment.objects.filter(pk=segment.pk).update(
        last_count=12345, last_counted_at=timezone.now() - timedelta(minutes=3)
    )
    response = marketer_client.get(reverse("segments:list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="{reverse("segments:detail", args=[segment.pk])}">Big spenders</a>' in html
    assert "12,345" in html
    assert "3\xa0minutes ago" in html
    assert "Over a thousand" in html
    assert f'href="{reverse("segments:new")}"' in html


def test_list_empty_state(marketer_client: Client) -> None:
    html = marketer_client.get(reverse("segments:list")).content.decode()
    assert "No segments yet" in html
    assert "Create the first segment" in html


def test_list_for_a_viewer_has_no_new_button(viewer_client: Client, segment: Segment) -> None:
    html = viewer_client.get(reverse("segments:list")).content.decode()
    assert "Big spenders" in html
    assert reverse("segments:new") not in html


# ---- segment page ------------------------------------------------------------------------------


def test_detail_overview_shows_rules_in_words_history_and_insights_slot(
    marketer_client: Client, segment: Segment
) -> None:
    today = today_in_zone()
    for days_ago, size in [(2, 10), (1, 12), (0, 15)]:
        SegmentSize.objects.create(
            segment=segment,
            day=today - timedelta(days=days_ago),
            rules_hash=rules_hash(segment.rules),
            counted_at=timezone.now(),
            size=size,
        )
    response = marketer_client.get(reverse("segments:detail", args=[segment.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Total spend over ₹1,000" in html
    panel_url = reverse("insights:segment_panel", args=[segment.pk])
    assert f'<div id="segment-insights" data-segment="{segment.pk}" hx-get="{panel_url}"' in html
    assert json_script(html, "size-history") == [
        {"label": day_label(today - timedelta(days=2)), "count": 10},
        {"label": day_label(today - timedelta(days=1)), "count": 12},
        {"label": day_label(today), "count": 15},
    ]
    assert "vendor/chart.umd.min.js" in html
    assert f'href="{reverse("segments:edit", args=[segment.pk])}"' in html
    assert 'id="delete-dialog"' in html


def test_detail_with_one_day_of_history_shows_the_number_not_a_chart(
    marketer_client: Client, segment: Segment
) -> None:
    SegmentSize.objects.filter(segment=segment).delete()
    SegmentSize.objects.create(
        segment=segment,
        day=today_in_zone(),
        rules_hash=rules_hash(segment.rules),
        counted_at=timezone.now(),
        size=12345,
    )
    html = marketer_client.get(reverse("segments:detail", args=[segment.pk])).content.decode()
    assert '<p class="seg-size-number">12,345</p>' in html
    assert "the chart starts on the second day" in html
    assert 'id="size-chart"' not in html


def test_detail_without_history_shows_an_empty_chart_state(
    marketer_client: Client, segment: Segment
) -> None:
    html = marketer_client.get(reverse("segments:detail", args=[segment.pk])).content.decode()
    assert "No history yet" in html
    assert "chart.umd.min.js" not in html


def test_detail_for_a_viewer_has_no_edit_or_delete(viewer_client: Client, segment: Segment) -> None:
    response = viewer_client.get(reverse("segments:detail", args=[segment.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("segments:edit", args=[segment.pk]) not in html
    assert 'id="delete-dialog"' not in html


def test_members_tab_pages_through_members_and_links_the_export(
    marketer_client: Client, segment: Segment
) -> None:
    for index in range(27):
        customer(f"Member{index:02d}", spend="2000.00")
    customer("Outsider", spend="10.00")
    url = reverse("segments:detail", args=[segment.pk])
    first = marketer_client.get(url, {"tab": "members"}).content.decode()
    second = marketer_client.get(url, {"tab": "members", "page": 2}).content.decode()
    assert first.count("<tr>") == 1 + 25
    assert second.count("<tr>") == 1 + 2
    assert "member00@example.com" in first
    assert "member26@example.com" in second
    assert "Outsider" not in first + second
    assert "1\u201325 of 27" in first
    assert 'href="?tab=members&amp;page=2"' in first
    assert f'href="/api/v1/segments/{segment.pk}/export"' in first


def test_campaigns_tab_is_an_empty_state(marketer_client: Client, segment: Segment) -> None:
    url = reverse("segments:detail", args=[segment.pk])
    html = marketer_client.get(url, {"tab": "campaigns"}).content.decode()
    assert "No campaigns yet" in html
    assert f"/campaigns/new/?segment={segment.pk}" in html
    assert 'href="?tab=campaigns" aria-current="page"' in html


def test_unknown_tab_falls_back_to_the_overview(marketer_client: Client, segment: Segment) -> None:
    url = reverse("segments:detail", args=[segment.pk])
    html = marketer_client.get(url, {"tab": "nope"}).content.decode()
    assert 'href="?tab=overview" aria-current="page"' in html


def test_missing_segment_is_404(marketer_client: Client) -> None:
    assert marketer_client.get(reverse("segments:detail", args=[999])).status_code == 404
    assert marketer_client.get(reverse("segments:edit", args=[999])).status_code == 404


# ---- builder -----------------------------------------------------------------------------------


def test_builder_renders_the_fields_metadata_and_an_empty_rule(marketer_client: Client) -> None:
    response = marketer_client.get(reverse("segments:new"))
    html = response.content.decode()
    assert response.status_code == 200
    meta = json_script(html, "rule-fields")
    assert meta == json.loads(json.dumps(builder_meta()))
    assert [field["key"] for field in meta["fields"]] == [spec.key for spec in FIELDS]  # type: ignore[index]
    assert meta["max_depth"] == 5  # type: ignore[index]
    assert 'data-describe="/api/v1/segments/parse"' in html
    assert builder_rules(html) == {"match": "all", "conditions": []}
    assert 'hx-trigger="rules-changed from:body delay:300ms"' in html
    assert 'aria-live="polite"' in html


@pytest.mark.django_db
def test_builder_metadata_gives_each_operator_one_input_kind() -> None:
    fields = {field["key"]: field for field in builder_meta()["fields"]}
    kinds = {op["key"]: op["value"] for op in fields["last_order_date"]["operators"]}
    assert kinds == {
        "in_last_days": "days",
        "not_in_last_days": "days",
        "before": "single",
        "after": "single",
        "on": "single",
        "between": "range",
        "is_empty": "none",
        "is_not_empty": "none",
    }
    assert {op["value"] for op in fields["tags"]["operators"]} == {"list"}
    assert fields["days_since_last_order"]["unit"] == "days"


@pytest.mark.django_db
def test_builder_offers_the_attribute_keys_found_typed_with_examples() -> None:
    CustomerFactory(attributes={"plan": "gold", "score": 3, "vip": True, "bad$key": "x"})
    CustomerFactory(attributes={"plan": "silver", "score": 2.5, "vip": False})
    CustomerFactory(attributes={"plan": "", "score": None})
    fields = {field["key"]: field for field in builder_meta()["fields"]}
    plan, score, vip = (fields[f"attributes.{key}"] for key in ("plan", "score", "vip"))
    assert (plan["type"], plan["examples"]) == ("text", ["silver", "gold"])
    assert plan["label"] == "plan (e.g. silver, gold)"
    assert "contains" in [op["key"] for op in plan["operators"]]
    assert (score["type"], score["examples"]) == ("decimal", ["2.5", "3"])
    assert "gt" in [op["key"] for op in score["operators"]]
    assert vip["type"] == "boolean"
    assert [op["key"] for op in vip["operators"]][:2] == ["is_true", "is_false"]
    assert "attributes.bad$key" not in fields  # no rule could name it


def test_edit_page_loads_the_saved_rules_into_the_builder(
    marketer_client: Client, segment: Segment
) -> None:
    html = marketer_client.get(reverse("segments:edit", args=[segment.pk])).content.decode()
    assert 'value="Big spenders"' in html
    assert "Over a thousand</textarea>" in html
    assert builder_rules(html) == BIG_SPENDERS


def test_preview_fragment_counts_and_samples_valid_rules(
    marketer_client: Client, people: dict[str, Customer]
) -> None:
    html = preview(marketer_client, NESTED)
    assert '<span class="seg-count-value" data-testid="audience-count">2</span>' in html
    assert 'id="audience-count" hx-swap-oob="innerHTML"' in html
    assert '<strong class="tabular">50%</strong> of 4 customers' in html
    # Biggest spenders first: Asha (6 orders) and Ravi (Pune); Meera fails the ANY group.
    assert html.index("Asha Test") < html.index("Ravi Test")
    assert "asha@example.com" in html
    assert "₹5,000" in html
    assert "Meera" not in html
    assert json_script(html, "preview-errors") == []
    assert 'hx-post="/segments/preview/funnel/"' in html


def test_preview_fragment_for_an_empty_group_counts_everyone(
    marketer_client: Client, people: dict[str, Customer]
) -> None:
    html = preview(marketer_client, {"match": "all", "conditions": []})
    assert '<span class="seg-count-value" data-testid="audience-count">4</span>' in html
    assert "100%" in html
    assert "seg-funnel" not in html


def test_preview_fragment_counts_the_finished_rows_and_names_the_unfinished_ones(
    marketer_client: Client, people: dict[str, Customer]
) -> None:
    rules = {
        "match": "all",
        "conditions": [
            {"field": "total_spend", "operator": "gt", "value": 10},
            {
                "match": "any",
                "conditions": [
                    {"field": "city", "operator": "eq", "value": "Pune"},
                    {"field": "order_count", "operator": "gte", "value": None},
                ],
            },
            {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": " "}]},
            {"match": "any", "conditions": []},
        ],
    }
    html = preview(marketer_client, rules)
    # Counted as if only "spent over 10 and in Pune" were there: Ravi alone.
    assert '<span class="seg-count-value" data-testid="audience-count">1</span>' in html
    assert json_script(html, "preview-errors") == []
    assert json_script(html, "preview-pending") == [
        {
            "path": "conditions[1].conditions[1]",
            "name": "row 2 (Number of orders) of the group at row 2",
        },
        {"path": "conditions[2].conditions[0]", "name": "row 1 (City) of the group at row 3"},
        {"path": "conditions[3]", "name": "the empty group at row 4"},
    ]
    assert "3 unfinished rows are not counted yet." in html


def test_preview_fragment_names_the_rows_of_invalid_rules_where_they_are_in_the_builder(
    marketer_client: Client, people: dict[str, Customer]
) -> None:
    rules = {
        "match": "all",
        "conditions": [
            {"field": "city", "operator": "eq", "value": ""},
            {
                "match": "any",
                "conditions": [
                    {"field": "tags", "operator": "has_any", "value": []},
                    {"field": "order_count", "operator": "between", "value": [5, 2]},
                ],
            },
        ],
    }
    html = preview(marketer_client, rules)
    # The unfinished rows are left out of the check, yet the path names the row as the builder
    # shows it (second row of the group), not as it sits in what was counted.
    assert json_script(html, "preview-errors") == [
        {"path": "conditions[1].conditions[1].value", "message": "'between' needs low ≤ high"}
    ]
    assert '<span class="seg-count-value is-empty" data-testid="audience-count">—</span>' in html
    assert "Fix the highlighted conditions" in html


def test_preview_fragment_rejects_text_that_is_not_json(marketer_client: Client) -> None:
    response = marketer_client.post(reverse("segments:preview"), {"rules": "{oops"})
    assert response.status_code == 200
    assert json_script(response.content.decode(), "preview-errors") == [
        {"path": "", "message": "Not valid JSON"}
    ]


def test_funnel_fragment_shows_how_many_remain_after_each_condition(
    marketer_client: Client, people: dict[str, Customer]
) -> None:
    response = marketer_client.post(
        reverse("segments:preview_funnel"), {"rules": json.dumps(NESTED), "total": "4"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="seg-funnel-row"') == 2
    assert '<span class="seg-funnel-count">3</span>' in html
    assert '<span class="seg-funnel-count">2</span>' in html
    assert 'class="pct-75"' in html
    assert 'class="pct-50"' in html
    assert "Total spend over ₹1,000" in html


def test_funnel_fragment_without_a_total_scales_to_the_first_step(
    marketer_client: Client, people: dict[str, Customer]
) -> None:
    response = marketer_client.post(
        reverse("segments:preview_funnel"), {"rules": json.dumps(NESTED), "total": "x"}
    )
    html = response.content.decode()
    assert 'class="pct-100"' in html
    assert 'class="pct-67"' in html


def test_save_creates_the_segment_and_opens_its_page(
    marketer_client: Client, marketer: User
) -> None:
    response = marketer_client.post(
        reverse("segments:new"),
        {"name": "  Loyal Pune  ", "description": "For the launch", "rules": json.dumps(NESTED)},
    )
    segment = Segment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("segments:detail", args=[segment.pk])
    assert segment.name == "Loyal Pune"
    assert segment.description == "For the launch"
    assert segment.rules == NESTED
    assert segment.created_by == marketer


def test_save_with_an_unfinished_row_names_it_and_saves_nothing(
    marketer_client: Client,
) -> None:
    rules = {"match": "all", "conditions": [{"field": "total_spend", "operator": "gt"}]}
    response = marketer_client.post(
        reverse("segments:new"), {"name": "Broken", "description": "", "rules": json.dumps(rules)}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert Segment.objects.count() == 0
    assert json_script(html, "rule-errors") == [
        {"path": "conditions[0].value", "message": "a value is required"}
    ]
    assert "Row 1 (Total spend) is not finished: give it a value or remove it." in html
    assert "Some conditions need attention" not in html
    # The builder reloads exactly what was posted, so nothing typed is lost.
    assert builder_rules(html) == rules


def test_save_with_a_wrong_value_points_at_the_highlighted_rows(marketer_client: Client) -> None:
    rules = {
        "match": "all",
        "conditions": [{"field": "total_spend", "operator": "gt", "value": -3}],
    }
    response = marketer_client.post(
        reverse("segments:new"), {"name": "Broken", "rules": json.dumps(rules)}
    )
    html = response.content.decode()
    assert Segment.objects.count() == 0
    assert json_script(html, "rule-errors") == [
        {"path": "conditions[0].value", "message": "must be 0 or more"}
    ]
    assert "Some conditions need attention: see the highlighted rows." in html


def test_save_with_an_empty_group_refuses_it_by_name(marketer_client: Client) -> None:
    rules = {"match": "any", "conditions": [BIG_SPENDERS, {"match": "all", "conditions": []}]}
    response = marketer_client.post(
        reverse("segments:new"), {"name": "Half", "rules": json.dumps(rules)}
    )
    html = response.content.decode()
    assert Segment.objects.count() == 0
    assert "The empty group at row 2 is not finished: add a condition to it or remove it." in html
    assert json_script(html, "rule-errors") == [
        {"path": "conditions[1]", "message": "This group is empty: add a condition or remove it"}
    ]


def test_save_without_a_name_is_a_form_error(marketer_client: Client) -> None:
    response = marketer_client.post(
        reverse("segments:new"), {"name": "", "rules": json.dumps(BIG_SPENDERS)}
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Segment.objects.count() == 0


def test_save_with_a_taken_name_is_an_error_on_the_name(
    marketer_client: Client, segment: Segment
) -> None:
    response = marketer_client.post(
        reverse("segments:new"), {"name": "big SPENDERS", "rules": json.dumps(NESTED)}
    )
    form = response.context["form"]
    assert response.status_code == 200
    assert form.errors == {"name": ['A segment named "big SPENDERS" already exists.']}
    assert list(Segment.objects.values_list("name", flat=True)) == ["Big spenders"]


def test_edit_saves_new_rules_and_name(marketer_client: Client, segment: Segment) -> None:
    response = marketer_client.post(
        reverse("segments:edit", args=[segment.pk]),
        {"name": "Loyal", "description": "", "rules": json.dumps(NESTED)},
    )
    segment.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == reverse("segments:detail", args=[segment.pk])
    assert (segment.name, segment.description, segment.rules) == ("Loyal", "", NESTED)


def test_edit_with_invalid_rules_changes_nothing(marketer_client: Client, segment: Segment) -> None:
    rules = {"match": "all", "conditions": [{"field": "shoe_size", "operator": "gt", "value": 1}]}
    response = marketer_client.post(
        reverse("segments:edit", args=[segment.pk]),
        {"name": "Renamed", "description": "", "rules": json.dumps(rules)},
    )
    segment.refresh_from_db()
    assert response.status_code == 200
    assert json_script(response.content.decode(), "rule-errors")[0]["path"] == (  # type: ignore[index]
        "conditions[0].field"
    )
    assert (segment.name, segment.rules) == ("Big spenders", BIG_SPENDERS)


def test_delete_removes_the_segment(marketer_client: Client, segment: Segment) -> None:
    response = marketer_client.post(reverse("segments:delete", args=[segment.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("segments:list")
    assert Segment.objects.count() == 0


def test_delete_needs_post(marketer_client: Client, segment: Segment) -> None:
    assert marketer_client.get(reverse("segments:delete", args=[segment.pk])).status_code == 405
    assert Segment.objects.count() == 1
