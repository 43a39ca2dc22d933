"""Issue 10: an "all customers" segment, lists compiled to one IN, the rule-tree budget, statement
timeouts on every segment read, and exports that cannot be cut short silently."""

import json
import logging
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from minicrm.core.limits import MAX_RULE_LIST_ITEMS, MAX_RULE_TREE_LIST_ITEMS
from minicrm.core.statement_timeout import StatementTimeoutError, statement_timeout
from minicrm.customers.models import Customer
from minicrm.insights.facts import rules_facts
from minicrm.segments import api as segments_api
from minicrm.segments.compiler import compile_rules, customers_matching
from minicrm.segments.models import Segment, SegmentSize
from minicrm.segments.rules import parse_rules
from minicrm.segments.selectors import segment_funnel, segments_for_customer
from minicrm.segments.services import segment_create, segment_size_record
from minicrm.segments.snapshot import CustomerSnapshot
from tests.factories import CustomerFactory

from .slow_sql import run_slow_query

EVERYONE_RULES = {"match": "all", "conditions": []}
TINY = 0.2


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json")


# --- Item 2: an empty group is a condition like any other ----------------------------------


@pytest.mark.django_db
def test_an_all_customers_segment_keeps_customer_pages_working(admin_client: Client) -> None:
    customer = CustomerFactory(external_id="c1", city="Pune")
    everyone = segment_create(name="Everyone", rules=parse_rules(EVERYONE_RULES), created_by=None)
    nested = segment_create(
        name="Pune or anyone",
        rules=parse_rules({"match": "any", "conditions": [{"match": "all", "conditions": []}]}),
        created_by=None,
    )
    segment_create(
        name="Mumbai",
        rules=parse_rules(
            {"match": "all", "conditions": [{"field": "city", "operator": "eq", "value": "x"}]}
        ),
        created_by=None,
    )
    assert segments_for_customer(customer_id=customer.pk) == [everyone, nested]
    response = admin_client.get(reverse("segments:for_customer", args=[customer.pk]))
    assert response.status_code == 200
    assert b"Everyone" in response.content


@pytest.mark.django_db
def test_the_empty_group_compiles_to_a_condition_usable_everywhere() -> None:
    CustomerFactory(external_id="a")
    CustomerFactory(external_id="b")
    group = parse_rules(EVERYONE_RULES)
    condition = compile_rules(group)
    assert len(condition) == 1  # never the empty Q() that When() refuses
    assert Customer.objects.filter(condition).count() == 2
    assert Customer.objects.exclude(condition).count() == 0
    # Rules that match everyone filter nothing at all (facts rely on that).
    assert not customers_matching(group).query.where
    funnel = segment_funnel(
        rules=parse_rules({"match": "any", "conditions": [{"match": "all", "conditions": []}]})
    )
    assert [step["count"] for step in funnel] == [2]


# --- Item 3: lists are one IN, and the budget --------------------------------------------


def test_a_long_list_compiles_to_one_in_never_an_or_chain() -> None:
    values = [f"city {index}" for index in range(MAX_RULE_LIST_ITEMS)]
    rules = parse_rules(
        {
            "match": "all",
            "conditions": [
                {"field": "city", "operator": "in", "value": values},
                {"field": "email", "operator": "not_in", "value": values},
                {"field": "tags", "operator": "has_all", "value": values[:50]},
                {"field": "tags", "operator": "has_any", "value": values[:50]},
            ],
        }
    )
    sql, _params = customers_matching(rules).query.sql_with_params()
    assert " OR " not in sql
    # The column once per list (UPPER, or CONCAT on MariaDB), and the values' UPPER on PostgreSQL.
    assert sql.count("UPPER(") + sql.count("CONCAT(") in (2, 4)
    assert sql.count(" IN (") <= 8
    assert "EXISTS" not in sql


@pytest.mark.django_db
def test_over_the_tree_budget_is_a_422_naming_the_path_and_the_budget(
    api_client: Client,
) -> None:
    lists = MAX_RULE_TREE_LIST_ITEMS // MAX_RULE_LIST_ITEMS + 1
    rules = {
        "match": "all",
        "conditions": [
            {
                "field": "city",
                "operator": "in",
                "value": [f"v{index}" for index in range(MAX_RULE_LIST_ITEMS)],
            }
        ]
        * lists,
    }
    response = post(api_client, "/api/v1/segments", {"name": "Too big", "rules": rules})
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["path"] == f"conditions[{lists - 1}].value"
    assert error["msg"] == (
        "Over the rule-tree budget: at most 5,000 list values in all conditions together "
        "(found 5,500)"
    )
    assert not Segment.objects.exists()


# --- Item 3: statement timeouts -------------------------------------------------------------


def slow(**_kwargs: Any) -> Any:
    run_slow_query()


@pytest.mark.django_db
@override_settings(MINICRM_WEB_STATEMENT_TIMEOUT=TINY)
def test_a_preview_past_its_budget_is_a_503_saying_so(api_client: Client) -> None:
    with mock.patch.object(segments_api, "segment_preview", side_effect=slow):
        response = post(api_client, "/api/v1/segments/preview", {"rules": EVERYONE_RULES})
    assert response.status_code == 503
    assert "took too long" in response.json()["detail"]
    # The server is not wedged: the next request answers.
    assert (
        post(api_client, "/api/v1/segments/preview", {"rules": EVERYONE_RULES}).status_code == 200
    )


@pytest.mark.django_db
@override_settings(MINICRM_WEB_STATEMENT_TIMEOUT=TINY)
def test_a_members_page_past_its_budget_is_a_503(api_client: Client) -> None:
    segment = segment_create(name="All", rules=parse_rules(EVERYONE_RULES), created_by=None)
    with mock.patch.object(segments_api, "paginate", side_effect=lambda *a, **k: slow()):
        response = api_client.get(f"/api/v1/segments/{segment.pk}/customers")
    assert response.status_code == 503
    assert "took too long" in response.json()["detail"]


@pytest.mark.django_db
@override_settings(MINICRM_WEB_STATEMENT_TIMEOUT=TINY)
def test_the_builder_panel_and_members_tab_say_the_query_took_too_long(
    marketer_client: Client,
) -> None:
    segment = segment_create(name="All", rules=parse_rules(EVERYONE_RULES), created_by=None)
    with mock.patch("minicrm.segments.views.segment_preview", side_effect=slow):
        panel = marketer_client.post(
            reverse("segments:preview"), {"rules": json.dumps(EVERYONE_RULES)}
        )
    assert panel.status_code == 200
    assert b"took too long" in panel.content
    with mock.patch("minicrm.segments.views.segment_members", side_effect=slow):
        page = marketer_client.get(reverse("segments:detail", args=[segment.pk]) + "?tab=members")
    assert page.status_code == 200
    assert b"took too long" in page.content


@pytest.mark.django_db
@override_settings(MINICRM_WORKER_STATEMENT_TIMEOUT=TINY)
def test_a_size_count_past_its_budget_fails_the_task_and_keeps_no_point() -> None:
    CustomerFactory(external_id="a")
    with mock.patch("minicrm.segments.services.segment_size_record_task"):
        segment = segment_create(name="All", rules=parse_rules(EVERYONE_RULES), created_by=None)
    counted_at_save = (segment.last_count, segment.last_counted_at)
    assert counted_at_save[0] == 1
    with (
        mock.patch(
            "minicrm.segments.services.customers_matching",
            return_value=mock.Mock(count=run_slow_query),
        ),
        pytest.raises(StatementTimeoutError),
    ):
        segment_size_record(segment_id=segment.pk)
    assert not SegmentSize.objects.exists()
    segment.refresh_from_db()
    assert (segment.last_count, segment.last_counted_at) == counted_at_save  # left as it was
    assert segment_size_record(segment_id=segment.pk).size == 1  # type: ignore[union-attr]


@pytest.mark.django_db
@override_settings(MINICRM_WORKER_STATEMENT_TIMEOUT=TINY)
def test_facts_past_the_worker_budget_raise_a_timeout() -> None:
    CustomerFactory(external_id="a", city="Pune")
    rules = parse_rules(
        {"match": "all", "conditions": [{"field": "city", "operator": "is_not_empty"}]}
    )
    with (
        mock.patch("minicrm.insights.facts.members_facts", side_effect=slow),
        pytest.raises(StatementTimeoutError),
    ):
        rules_facts(rules=rules, snapshot=None)


# --- Item 6: exports ------------------------------------------------------------------------


def rows_then_error(**_kwargs: Any) -> Iterator[tuple[Any, ...]]:
    for customer in Customer.objects.order_by("pk"):
        yield (customer.pk, customer.external_id, *([""] * 11), "")
    raise RuntimeError("the database went away")


@pytest.mark.django_db
def test_an_error_mid_export_ends_the_file_visibly_and_aborts_the_stream(
    api_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    CustomerFactory(external_id="a")
    CustomerFactory(external_id="b")
    segment = segment_create(name="All", rules=parse_rules(EVERYONE_RULES), created_by=None)
    with mock.patch.object(segments_api, "segment_export_rows", side_effect=rows_then_error):
        response = api_client.get(f"/api/v1/segments/{segment.pk}/export")
        assert response.status_code == 200
        received: list[bytes] = []
        with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError):
            received.extend(response.streaming_content)  # keeps what came before the error
    lines = b"".join(received).decode().splitlines()
    assert len(lines) == 4  # header, two customers, and the line saying the file is incomplete
    assert lines[-1] == (
        "EXPORT INCOMPLETE: an error stopped the export after 2 customers; this file is missing "
        "the rest. Download it again."
    )
    assert f"The export of segment {segment.pk} stopped after 2 rows" in caplog.text


@pytest.mark.django_db
def test_an_export_that_fails_at_once_answers_an_error_not_an_empty_file(
    api_client: Client,
) -> None:
    CustomerFactory(external_id="a")
    segment = segment_create(name="All", rules=parse_rules(EVERYONE_RULES), created_by=None)

    def too_slow(**_kwargs: Any) -> Iterator[tuple[Any, ...]]:
        raise StatementTimeoutError(TINY)
        yield ()

    with mock.patch.object(segments_api, "segment_export_rows", side_effect=too_slow):
        response = api_client.get(f"/api/v1/segments/{segment.pk}/export")
    assert response.status_code == 503
    assert "took too long" in response.json()["detail"]


@pytest.mark.django_db
@override_settings(MINICRM_WEB_STATEMENT_TIMEOUT=TINY)
def test_an_export_chunk_runs_under_the_web_budget(api_client: Client) -> None:
    CustomerFactory(external_id="a")
    segment = segment_create(name="All", rules=parse_rules(EVERYONE_RULES), created_by=None)
    with mock.patch(
        "minicrm.segments.selectors.CustomerTag.objects.filter",
        side_effect=lambda **_: run_slow_query(),
    ):
        response = api_client.get(f"/api/v1/segments/{segment.pk}/export")
    assert response.status_code == 503


@pytest.mark.django_db
def test_a_snapshot_query_past_the_budget_is_interrupted() -> None:
    CustomerFactory(external_id="a")
    snapshot = CustomerSnapshot()
    snapshot.load()
    slow_sql = "SELECT COUNT(*) FROM range(100000000000) AS t(i) WHERE i % 7 = 3"
    with pytest.raises(StatementTimeoutError), statement_timeout(TINY):
        snapshot.fetch(slow_sql, [])
    # The copy still answers, and without a budget nothing is interrupted.
    assert snapshot.total() == 1
