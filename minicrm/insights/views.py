"""HTML fragments for insights: the segment page's insight panel (loaded with htmx), its
Regenerate action, and the "Suggest messages" form that campaign pages can reuse."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from minicrm.accounts.models import Role, User
from minicrm.accounts.permissions import role_required
from minicrm.core.errors import ApplicationError, NotFoundError
from minicrm.core.formatting import currency_symbol, money_format_options
from minicrm.segments.models import Segment
from minicrm.segments.selectors import segment_get

from .facts import ORDER_COUNT_BUCKETS, RECENCY_BUCKETS
from .models import Insight
from .selectors import insight_latest
from .services import insight_request, messages_suggest

SPEND_FIGURES = [
    ("avg_spend", "Average spend"),
    ("median_spend", "Median spend"),
    ("avg_order_value", "Average order value"),
]
# Short axis labels (the chart subtitles give the unit), so they never need rotating.
RECENCY_LABELS = {key: key.replace("-", "\u2013") for key, *_ in RECENCY_BUCKETS} | {
    "never": "Never"
}
ORDER_LABELS = {key: key.replace("-", "\u2013") for key, *_ in ORDER_COUNT_BUCKETS}


def _segment_or_404(segment_id: int) -> Segment:
    try:
        return segment_get(segment_id=segment_id)
    except NotFoundError:
        raise Http404("No such segment.") from None


def _can_generate(request: HttpRequest) -> bool:
    return isinstance(request.user, User) and request.user.has_role(Role.MARKETER)


def chart_money(currency: str) -> dict[str, str]:
    """The facts' currency for the browser's Intl.NumberFormat. Facts written before money had
    a code carry a symbol ('₹'), which Intl refuses: those were in the shop currency."""
    options = money_format_options()
    if len(currency) == 3 and currency.isalpha() and currency.isupper():
        options.update(currency=currency, symbol=currency_symbol(currency))
    return options


def chart_data(facts: dict[str, Any]) -> dict[str, Any]:
    """Chart series (shares in %, money in currency units) and the same rows for the tables."""
    segment, base = facts["segment"], facts["base"]

    def shares(key: str, labels: dict[str, str]) -> dict[str, Any]:
        rows = [
            {
                "label": labels.get(mine["bucket"], mine["label"]),
                "segment": round(mine["share"] * 100, 1),
                "base": round(theirs["share"] * 100, 1),
                "customers": mine["customers"],
            }
            for mine, theirs in zip(segment[key], base[key], strict=True)
        ]
        return {"rows": rows}

    spend = [
        {"label": label, "segment": segment[key], "base": base[key]} for key, label in SPEND_FIGURES
    ]
    return {
        "currency": facts["currency"],
        # How the script writes the spend axis, in the shop locale (data.money).
        "money": chart_money(facts["currency"]),
        "recency": shares("recency", RECENCY_LABELS),
        "orders": shares("order_count_distribution", ORDER_LABELS),
        "spend": {"rows": spend},
    }


def panel_context(request: HttpRequest, segment: Segment) -> dict[str, Any]:
    insight: Insight | None = insight_latest(segment_id=segment.pk)
    context: dict[str, Any] = {
        "segment": segment,
        "insight": insight,
        "can_generate": _can_generate(request),
        "panel_url": reverse("insights:segment_panel", args=[segment.pk]),
        "generate_url": reverse("insights:segment_generate", args=[segment.pk]),
        "suggest_url": reverse("insights:suggest_messages", args=[segment.pk]),
    }
    if insight is not None and insight.status == Insight.Status.SUCCEEDED and insight.facts:
        context["charts"] = chart_data(insight.facts)
        context["charts_id"] = f"insight-charts-{insight.pk}"
    return context


@require_GET
def segment_panel(request: HttpRequest, segment_id: int) -> HttpResponse:
    """The latest insight of a segment as a card; it polls itself while queued or running."""
    segment = _segment_or_404(segment_id)
    return render(request, "insights/panel.html", panel_context(request, segment))


@require_POST
@role_required(Role.MARKETER)
def segment_generate(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Queue a new insight and answer with the panel in its queued state."""
    segment = _segment_or_404(segment_id)
    user = request.user if isinstance(request.user, User) else None
    insight_request(segment_id=segment.pk, requested_by=user)
    return render(request, "insights/_panel.html", panel_context(request, segment))


@require_http_methods(["GET", "POST"])
@role_required(Role.MARKETER)
def suggest_messages(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Objective in, three message variants out (a fragment; htmx swaps the form in place)."""
    segment = _segment_or_404(segment_id)
    context: dict[str, Any] = {
        "segment": segment,
        "suggest_url": reverse("insights:suggest_messages", args=[segment.pk]),
        "objective": "",
        "suggestions": [],
        "error": "",
    }
    status = 200
    if request.method == "POST":
        context["objective"] = request.POST.get("objective", "").strip()[:500]
        try:
            context["suggestions"] = messages_suggest(
                segment_id=segment.pk, objective=context["objective"]
            )
        except ApplicationError as error:
            context["error"] = error.message
            # htmx swaps 4xx answers only when told to; the form shows the message either way.
            status = 200 if request.headers.get("HX-Request") else error.status_code
    return render(request, "insights/_suggest_messages.html", context, status=status)
