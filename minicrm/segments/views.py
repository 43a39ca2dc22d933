"""Segment pages: the list, the rule builder with its live audience panel, and a segment's page."""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from minicrm.accounts.models import Role, User
from minicrm.accounts.permissions import role_required
from minicrm.accounts.services import client_ip
from minicrm.core.errors import ApplicationError, NotFoundError
from minicrm.core.formatting import currency_symbol
from minicrm.core.limits import MAX_RULE_CONDITIONS, MAX_RULE_DEPTH
from minicrm.core.replica import replica_reads
from minicrm.core.statement_timeout import (
    StatementTimeoutError,
    statement_timeout,
    web_timeout_seconds,
)
from minicrm.customers.models import Customer
from minicrm.customers.selectors import customer_city_suggestions, customer_tag_suggestions

from .customer_filters import rules_from_customer_filters
from .draft import Draft, draft_split
from .forms import SegmentForm
from .models import Segment
from .rules import (
    ATTRIBUTE_OPERATORS_BY_TYPE,
    ATTRIBUTE_PREFIX,
    EMPTY_RULES,
    FIELDS,
    OperatorSpec,
    RuleValidationError,
    parse_rules,
)
from .selectors import (
    attribute_keys_sample,
    rules_describe,
    segment_funnel,
    segment_get,
    segment_members,
    segment_preview,
    segment_rules,
    segment_size_history,
    segments_for_customer,
)
from .services import segment_create, segment_delete, segment_update

MEMBERS_PAGE_SIZE = 25
HISTORY_DAYS = 90
CAMPAIGNS_SHOWN = 50
TABS = [("overview", "Overview"), ("members", "Members"), ("campaigns", "Campaigns")]
# The builder needs one kind of input per operator; the validator's finer kinds collapse here.
SINGLE_VALUE_KINDS = {"number", "money", "date", "text", "decimal", "scalar"}
# The builder's input for an attribute of each inferred type ("decimal": any number, any sign).
ATTRIBUTE_BUILDER_TYPES = {"text": "text", "number": "decimal", "boolean": "boolean"}
FIELD_UNITS = {"days_since_last_order": "days"}


def _operators_meta(operators: tuple[OperatorSpec, ...]) -> list[dict[str, str]]:
    return [
        {
            "key": operator.key,
            "label": operator.label,
            "value": "single" if operator.value_kind in SINGLE_VALUE_KINDS else operator.value_kind,
        }
        for operator in operators
    ]


def _attribute_fields() -> list[dict[str, Any]]:
    """One builder field per attribute key found in the data, typed from its stored values,
    its label showing a few examples ("plan (e.g. gold, silver)")."""
    fields = []
    for found in attribute_keys_sample():
        examples = ", ".join(found["examples"])
        label = f"{found['key']} (e.g. {examples})" if examples else found["key"]
        fields.append(
            {
                "key": ATTRIBUTE_PREFIX + found["key"],
                "label": label,
                "type": ATTRIBUTE_BUILDER_TYPES[found["type"]],
                "unit": "",
                "group": "Custom attributes",
                "examples": found["examples"],
                "operators": _operators_meta(ATTRIBUTE_OPERATORS_BY_TYPE[found["type"]]),
            }
        )
    return fields


def builder_meta() -> dict[str, Any]:
    """The field and operator metadata the builder script renders its selects from: the fixed
    fields, then the custom attributes found in the data; and the values the city and tag inputs
    suggest (`complete` when the list holds every value in use, so others are unknown)."""
    return {
        "suggestions": {
            "city": customer_city_suggestions(),
            "tags": customer_tag_suggestions(),
        },
        "fields": [
            {
                "key": spec.key,
                "label": spec.label,
                "type": spec.type,
                "unit": FIELD_UNITS.get(spec.key, ""),
                "operators": _operators_meta(spec.operators),
            }
            for spec in FIELDS
        ]
        + _attribute_fields(),
        # For a saved rule on a key the sample no longer holds, by the type of its value.
        "attribute_operators": {
            ATTRIBUTE_BUILDER_TYPES[kind]: _operators_meta(operators)
            for kind, operators in ATTRIBUTE_OPERATORS_BY_TYPE.items()
        },
        "currency": currency_symbol(),
        "max_depth": MAX_RULE_DEPTH,
        "max_conditions": MAX_RULE_CONDITIONS,
    }


def _can_edit(request: HttpRequest) -> bool:
    return isinstance(request.user, User) and request.user.has_role(Role.MARKETER)


def _segment_or_404(pk: int) -> Segment:
    try:
        return segment_get(segment_id=pk)
    except NotFoundError as error:
        raise Http404(error.message) from error


def _page(items: Any, request: HttpRequest, size: int) -> Page:
    return Paginator(items, size).get_page(request.GET.get("page"))


def _draft(raw_rules: str) -> Draft:
    """The builder's rules (JSON text) split into what counts and what is not finished yet."""
    try:
        data = json.loads(raw_rules or json.dumps(EMPTY_RULES))
    except (ValueError, RecursionError):
        data = raw_rules  # the validator says it is not JSON
    return draft_split(data)


def audience_context(raw_rules: str) -> dict[str, Any]:
    """What the audience panel shows for rules as the builder posts them (JSON text): the count
    of the finished conditions, the rows it leaves out for now, or what to fix."""
    draft = _draft(raw_rules)
    pending = [{"path": item.path, "name": item.name} for item in draft.pending]
    try:
        group = parse_rules(draft.countable)
    except RuleValidationError as error:
        return {"preview": None, "errors": draft.original_errors(error.errors), "pending": pending}
    try:
        with statement_timeout(web_timeout_seconds()):
            preview = segment_preview(rules=group)
    except StatementTimeoutError as error:
        return {"preview": None, "errors": [], "pending": pending, "too_slow": error.message}
    total = preview["total_customers"]
    share = 100 * preview["count"] / total if total else 0.0
    return {
        "preview": preview,
        "errors": [],
        "pending": pending,
        "share": f"{share:.1f}".removesuffix(".0"),
        "share_bar": round(share),
        # One step is the count itself; the funnel says something from the second step on.
        "funnel_wanted": len(group.conditions) > 1,
        "funnel_placeholders": range(len(group.conditions)),
    }


@require_GET
def segment_size_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """The segment's size and when it was counted; while a count is under way (rules too slow
    to count at save time) it polls itself until the background count lands."""
    return render(request, "segments/_size.html", {"segment": _segment_or_404(pk)})


@require_GET
def customer_segments_fragment(request: HttpRequest, customer_id: int) -> HttpResponse:
    """The saved segments one customer is in, loaded into the customer page by htmx: composed
    here so that the customers app never imports segments (data must not know who segments it).
    """
    if not Customer.objects.filter(pk=customer_id).exists():
        raise Http404("No such customer.")
    with statement_timeout(web_timeout_seconds()):
        segments = segments_for_customer(customer_id=customer_id)
    return render(request, "segments/_customer_segments.html", {"segments": segments})


@require_GET
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment_or_404(pk)
    tab = request.GET.get("tab", "overview")
    if tab not in dict(TABS):
        tab = "overview"
    context: dict[str, Any] = {
        "segment": segment,
        "rules_text": rules_describe(segment_rules(segment)),
        "tabs": TABS,
        "tab": tab,
        "can_edit": _can_edit(request),
    }
    if tab == "overview":
        history = segment_size_history(segment_id=segment.pk, days=HISTORY_DAYS)
        context["history"] = [{"date": point["date"], "count": point["size"]} for point in history]
        context["history_points"] = [
            {"label": f"{point['date'].day} {point['date']:%b}", "count": point["size"]}
            for point in history
        ]
        context["history_days"] = HISTORY_DAYS
    elif tab == "members":
        try:
            with replica_reads(), statement_timeout(web_timeout_seconds()):
                page = _page(segment_members(segment=segment), request, MEMBERS_PAGE_SIZE)
                page.object_list = list(page.object_list)
        except StatementTimeoutError as error:
            context["members_error"] = error.message
        else:
            context["page"] = page
        context["export_url"] = reverse("api:export_segment", kwargs={"segment_id": segment.pk})
    elif tab == "campaigns":
        # Through the reverse relation: segments may not import campaigns, which build on them.
        context["campaigns"] = list(segment.campaigns.all()[:CAMPAIGNS_SHOWN])
        context["campaigns_more"] = segment.campaigns.count() > CAMPAIGNS_SHOWN
        context["campaigns_sending"] = any(c.status == "sending" for c in context["campaigns"])
        context["campaigns_table_url"] = reverse("campaigns:list") + f"?segment={segment.pk}&page=1"
    return render(request, "segments/detail.html", context)


def _builder_page(
    request: HttpRequest,
    *,
    segment: Segment | None,
    initial: dict[str, str],
    save: Callable[[dict[str, Any]], Segment],
) -> HttpResponse:
    """GET shows the builder; POST saves through `save(cleaned_data)` or shows what to fix."""
    form = SegmentForm(request.POST if request.method == "POST" else None, initial=initial)
    if form.is_bound and form.is_valid():
        try:
            saved = save(form.cleaned_data)
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"Segment “{saved.name}” saved.")
            return redirect("segments:detail", pk=saved.pk)
    context = {
        "form": form,
        "segment": segment,
        "builder_meta": builder_meta(),
        "rule_errors": form.rule_errors,
        "describe_url": reverse("api:api-root") + "segments/parse",
        **audience_context(form.rules_json()),
    }
    return render(request, "segments/builder.html", context)


def _initial_rules(request: HttpRequest) -> dict[str, Any]:
    """Rules a link starts the builder with (`?rules=<JSON>`, e.g. a dashboard RFM cell).

    Parsed like any rules; invalid ones start an empty builder with a message, never an error.
    """
    raw = request.GET.get("rules")
    if not raw:
        return EMPTY_RULES
    try:
        return parse_rules(raw).to_dict()
    except RuleValidationError:
        messages.warning(
            request, "The link's rules could not be used, so the builder starts empty."
        )
        return EMPTY_RULES


@role_required(Role.MARKETER)
@require_GET
def segment_new_from_customers(request: HttpRequest) -> HttpResponse:
    """The customer list's "Save as segment": the builder opened with its filters as rules."""
    rules = rules_from_customer_filters(request.GET)
    if rules is None:
        messages.warning(request, "A name search has no segment rule; search by email to save.")
        return redirect(f"{reverse('customers:list')}?{request.GET.urlencode()}")
    return redirect(f"{reverse('segments:new')}?{urlencode({'rules': json.dumps(rules)})}")


@role_required(Role.MARKETER)
@require_http_methods(["GET", "POST"])
def segment_new(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    return _builder_page(
        request,
        segment=None,
        initial={"rules": json.dumps(_initial_rules(request))},
        save=lambda data: segment_create(
            name=data["name"],
            description=data["description"],
            rules=data["rules"],
            created_by=user,
            ip_address=client_ip(request),
        ),
    )


@role_required(Role.MARKETER)
@require_http_methods(["GET", "POST"])
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    segment = _segment_or_404(pk)
    return _builder_page(
        request,
        segment=segment,
        initial={
            "name": segment.name,
            "description": segment.description,
            "rules": json.dumps(segment.rules),
        },
        save=lambda data: segment_update(
            segment_id=segment.pk,
            name=data["name"],
            description=data["description"],
            rules=data["rules"],
            actor=user,
            ip_address=client_ip(request),
        ),
    )


@role_required(Role.MARKETER)
@require_POST
def segment_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        user = request.user
        assert isinstance(user, User)
        segment_delete(segment_id=pk, actor=user, ip_address=client_ip(request))
    except NotFoundError as error:
        raise Http404(error.message) from error
    messages.success(request, "Segment deleted.")
    return redirect("segments:list")


@role_required(Role.MARKETER)
@require_POST
def segment_preview_fragment(request: HttpRequest) -> HttpResponse:
    """The audience panel for the builder's current rules (htmx swaps it in)."""
    return render(
        request, "segments/_preview.html", audience_context(request.POST.get("rules", ""))
    )


@role_required(Role.MARKETER)
@require_POST
def segment_funnel_fragment(request: HttpRequest) -> HttpResponse:
    """The funnel, loaded just after the count: one bar per top-level condition."""
    try:
        group = parse_rules(_draft(request.POST.get("rules", "")).countable)
    except RuleValidationError:
        return render(request, "segments/_funnel.html", {"steps": []})
    try:
        with statement_timeout(web_timeout_seconds()):
            steps = segment_funnel(rules=group)
    except StatementTimeoutError as error:
        return render(request, "segments/_funnel.html", {"steps": [], "too_slow": error.message})
    # The panel passes the total it just counted, so this request does not count it again; it
    # only scales the bars, so without it the widest step stands for the whole.
    try:
        total = max(int(request.POST.get("total", "")), 0)
    except ValueError:
        total = max((step["count"] for step in steps), default=0)
    context = {
        "steps": [
            {**step, "width": min(100.0, round(100 * step["count"] / total, 1)) if total else 0}
            for step in steps
        ],
        "joiner": "or" if group.match == "any" else "and",
    }
    return render(request, "segments/_funnel.html", context)
