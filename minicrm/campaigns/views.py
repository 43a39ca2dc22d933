"""Campaign pages: the list, the three-step composer with its live preview, a campaign's page
(progress, delivery log, results, AI summary), and the unsubscribe page recipients reach.

Every write goes through `services`; their errors (InvalidInputError naming a field,
ConflictError, TemplateProblemError naming the line) come back as form errors or a toast, never
a 500. Viewers see every page; writes need the marketer role.
"""

from datetime import timedelta
from decimal import Decimal
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from minicrm.accounts.models import Role, User
from minicrm.accounts.permissions import role_required
from minicrm.accounts.services import client_ip
from minicrm.core.errors import ApplicationError, NotFoundError
from minicrm.core.statement_timeout import (
    StatementTimeoutError,
    statement_timeout,
    web_timeout_seconds,
)
from minicrm.customers.models import Customer
from minicrm.segments.models import Segment
from minicrm.segments.rules import RuleValidationError, parse_rules

from .audience import audience_counts
from .forms import FORM_FIELD_OF, Action, CampaignForm
from .models import Campaign, Channel, Delivery
from .preview import message_preview
from .results import campaign_results
from .selectors import campaign_deliveries, campaign_get, campaign_list
from .services import (
    MAX_HOLDOUT_PERCENT,
    campaign_cancel,
    campaign_create,
    campaign_send,
    campaign_update,
)
from .summary import summary_request
from .templating import PLACEHOLDERS, TemplateProblemError
from .unsubscribe import customer_id_from_token, customer_unsubscribe

LIST_PAGE_SIZE = 50
MAX_ID_DIGITS = 9  # below 2**31: fits every integer primary key on every database
LOG_PAGE_SIZE = 25
# Seconds between refreshes while a campaign sends (the list, its page) or waits for its time.
POLL_SENDING = 2
POLL_SCHEDULED = 15
# Once sent, receipts keep arriving from the vendor: the counters follow them for a while.
POLL_RECEIPTS = 5
RECEIPTS_WATCH = timedelta(hours=1)

EXCLUDED_LABELS = {
    "unsubscribed": "Unsubscribed",
    "no_consent": "No marketing consent",
    "no_email": "No email address",
}
SUMMARY_WAITING = {"queued", "running"}
REACH_SHOWN = {Campaign.Status.DRAFT, Campaign.Status.SCHEDULED}


# ---- Helpers -------------------------------------------------------------------------------


def _can_edit(request: HttpRequest) -> bool:
    return isinstance(request.user, User) and request.user.has_role(Role.MARKETER)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _campaign_or_404(pk: int) -> Campaign:
    try:
        return campaign_get(campaign_id=pk)
    except NotFoundError as error:
        raise Http404(error.message) from error


def _page(items: Any, request: HttpRequest, size: int) -> Page:
    return Paginator(items, size).get_page(request.GET.get("page"))


def id_or_none(value: object) -> int | None:
    """A row id from user input, or None: never a value the database would refuse (an id past
    the integer column's range is a DataError on PostgreSQL and MariaDB, not "no such row")."""
    text = str(value or "")
    if not text.isdigit() or len(text) > MAX_ID_DIGITS:
        return None
    return int(text)


def recipients_after_holdout(audience: int, holdout_percent: int) -> int:
    """How many get the message: the launch holds out audience * share // 100 (services)."""
    return audience - audience * holdout_percent // 100


def excluded_rows(excluded: dict[str, int]) -> list[tuple[str, str, int]]:
    """`(reason, label, count)` for each exclusion reason, in the order audience.py tries them."""
    return [(reason, EXCLUDED_LABELS.get(reason, reason), n) for reason, n in excluded.items()]


def poll_seconds(campaign: Campaign) -> int | None:
    if campaign.status == Campaign.Status.SENDING:
        return POLL_SENDING
    if campaign.status == Campaign.Status.SCHEDULED:
        return POLL_SCHEDULED
    if (
        campaign.status == Campaign.Status.SENT
        and campaign.channel == Channel.WEBHOOK  # the channel with delivery receipts
        and campaign.sent  # sent, with no receipt yet
        and campaign.finished_at is not None
        and timezone.now() - campaign.finished_at < RECEIPTS_WATCH
    ):
        return POLL_RECEIPTS
    return None


# What the campaigns table does not show: left unread for every row of the page.
TABLE_DEFERRED = ("template", "rules", "summary", "excluded", "error", "summary_error")


def table_context(request: HttpRequest, *, segment_id: int | None = None) -> dict[str, Any]:
    """The campaigns table (list page and a segment's Campaigns tab); it refreshes itself while
    any campaign on the page is sending."""
    campaigns_of = campaign_list(segment_id=segment_id).defer(*TABLE_DEFERRED)
    page = _page(campaigns_of, request, LIST_PAGE_SIZE)
    campaigns = list(page.object_list)
    # The page links and the table's own refresh keep the segment filter.
    page_query = f"segment={segment_id}&" if segment_id is not None else ""
    return {
        "campaigns": campaigns,
        "page": page,
        "page_query": page_query,
        "table_url": reverse("campaigns:list") + f"?{page_query}page={page.number}",
        "polling": any(c.status == Campaign.Status.SENDING for c in campaigns),
        # A segment's own campaigns (its Campaigns tab refreshes through this view) need no
        # segment column.
        "hide_segment": segment_id is not None,
        "poll_seconds": POLL_SENDING,
    }


# ---- List -----------------------------------------------------------------------------------


@require_GET
def campaign_list_page(request: HttpRequest) -> HttpResponse:
    segment_id = id_or_none(request.GET.get("segment"))
    context = table_context(request, segment_id=segment_id)
    if _is_htmx(request):
        return render(request, "campaigns/_table.html", context)
    context["can_edit"] = _can_edit(request)
    if segment_id is not None:
        context["segment_filter"] = Segment.objects.filter(pk=segment_id).first()
    return render(request, "campaigns/list.html", context)


# ---- Composer -------------------------------------------------------------------------------


def _composer_save(
    form: CampaignForm, campaign: Campaign | None, user: User, *, ip_address: str | None
) -> Campaign:
    """Save the draft, then send or schedule it if asked: one transaction, so a send refused
    (a 409, say) leaves nothing half done."""
    values = form.campaign_values()
    action = form.cleaned_data["action"]
    with transaction.atomic():
        if campaign is None:
            saved = campaign_create(created_by=user, **values)
        else:
            saved = campaign_update(campaign_id=campaign.pk, **values)
        if action == Action.SEND:
            saved = campaign_send(campaign_id=saved.pk, actor=user, ip_address=ip_address)
        elif action == Action.SCHEDULE:
            saved = campaign_send(
                campaign_id=saved.pk,
                scheduled_at=form.cleaned_data["scheduled_at"],
                actor=user,
                ip_address=ip_address,
            )
    return saved


def _saved_message(campaign: Campaign) -> str:
    # With the immediate tasks backend the launch (even the delivery) ran when the send
    # committed: say where the campaign is now.
    campaign.refresh_from_db()
    people = f"{campaign.recipients:,} {'person' if campaign.recipients == 1 else 'people'}"
    if campaign.status == Campaign.Status.SENT:
        return f"“{campaign.name}” was sent to {people}."
    if campaign.status == Campaign.Status.SENDING and campaign.snapshot_at:
        return f"“{campaign.name}” is sending to {people}."
    if campaign.status == Campaign.Status.SENDING:
        return f"“{campaign.name}” is sending."
    if campaign.status == Campaign.Status.SCHEDULED and campaign.scheduled_at:
        when = campaign.scheduled_at.astimezone().strftime("%-d %b %Y, %H:%M")
        return f"“{campaign.name}” is scheduled for {when} ({settings.TIME_ZONE})."
    return f"Draft “{campaign.name}” saved."


def _composer_page(
    request: HttpRequest, *, campaign: Campaign | None, initial: dict[str, Any]
) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = CampaignForm(request.POST if request.method == "POST" else None, initial=initial)
    status = 200
    if form.is_bound:
        if form.is_valid():
            try:
                saved = _composer_save(form, campaign, user, ip_address=client_ip(request))
            except ApplicationError as error:
                field = FORM_FIELD_OF.get(error.field or "", error.field)
                form.add_error(field if field in form.fields else None, error.message)
            else:
                messages.success(request, _saved_message(saved))
                return redirect("campaigns:detail", pk=saved.pk)
        status = 422
    context = {
        "form": form,
        "campaign": campaign,
        "placeholders": PLACEHOLDERS,
        "max_holdout": MAX_HOLDOUT_PERCENT,
        "time_zone": settings.TIME_ZONE,
        "suggest_url_pattern": reverse("insights:suggest_messages", args=[0]),
    }
    return render(request, "campaigns/composer.html", context, status=status)


@role_required(Role.MARKETER)
@require_http_methods(["GET", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {"channel": Channel.LOG, "holdout_percent": 0}
    segment_id = id_or_none(request.GET.get("segment"))
    if segment_id is not None and Segment.objects.filter(pk=segment_id).exists():
        initial["segment"] = segment_id
    return _composer_page(request, campaign=None, initial=initial)


@role_required(Role.MARKETER)
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    if not campaign.is_editable:
        messages.warning(
            request, f"Only a draft can be edited; this campaign is {campaign.status}."
        )
        return redirect("campaigns:detail", pk=campaign.pk)
    return _composer_page(request, campaign=campaign, initial=CampaignForm.initial_of(campaign))


def preview_context(data: Any) -> dict[str, Any]:
    """The composer's live panel for what is typed now: the audience with its exclusions, and
    the message rendered for three real customers (or the template's problem, with its line)."""
    segment_id = id_or_none(data.get("segment"))
    segment = Segment.objects.filter(pk=segment_id).first() if segment_id is not None else None
    if segment is None:
        return {"segment": None}
    channel = data.get("channel") if data.get("channel") in Channel.values else Channel.LOG
    try:
        holdout = min(max(int(data.get("holdout_percent") or 0), 0), MAX_HOLDOUT_PERCENT)
    except ValueError:
        holdout = 0
    subject = str(data.get("subject", ""))
    template = str(data.get("template", ""))
    context: dict[str, Any] = {"segment": segment, "channel": channel, "samples": []}
    try:
        with statement_timeout(web_timeout_seconds()):
            counts: dict[str, Any] | None = None
            if template.strip():
                try:
                    counts = message_preview(
                        rules=segment.rules, channel=channel, subject=subject, template=template
                    )
                    context["samples"] = counts["samples"]
                except TemplateProblemError as error:
                    context["problem"] = error
            if counts is None:
                counts = audience_counts(parse_rules(segment.rules), channel)
    except StatementTimeoutError as error:
        context["too_slow"] = error.message
        return context
    except RuleValidationError:
        context["too_slow"] = "The segment's rules cannot be read; open the segment to fix them."
        return context
    context["audience"] = counts["audience"]
    context["excluded"] = excluded_rows(counts["excluded"])
    context["excluded_total"] = sum(counts["excluded"].values())
    context["holdout"] = holdout
    context["held_out"] = counts["audience"] - recipients_after_holdout(counts["audience"], holdout)
    context["recipients"] = recipients_after_holdout(counts["audience"], holdout)
    context["needs_subject"] = channel != Channel.LOG
    # Not an error (the email channel adds the one-click header anyway), but people should be
    # able to leave from the message itself.
    context["no_unsubscribe_link"] = bool(template.strip()) and "unsubscribe_url" not in template
    return context


@role_required(Role.MARKETER)
@require_POST
def campaign_preview_fragment(request: HttpRequest) -> HttpResponse:
    """The audience counts and the sample messages (htmx swaps them in as the marketer types)."""
    return render(request, "campaigns/_preview.html", preview_context(request.POST))


# ---- A campaign's page ----------------------------------------------------------------------


def reach_now(campaign: Campaign) -> dict[str, Any] | None:
    """Before the launch: whom the campaign would reach if it went out now (None if unknown)."""
    if campaign.segment_id is None:
        return None
    segment = Segment.objects.filter(pk=campaign.segment_id).only("rules").first()
    if segment is None:
        return None
    try:
        with statement_timeout(web_timeout_seconds()):
            counts = audience_counts(parse_rules(segment.rules), campaign.channel)
    except (StatementTimeoutError, RuleValidationError):
        return None
    audience = counts["audience"]
    return {
        "recipients": recipients_after_holdout(audience, campaign.holdout_percent),
        "excluded": sum(counts["excluded"].values()),
    }


def progress_stage(campaign: Campaign) -> str:
    return f"{campaign.status}:{int(campaign.snapshot_at is not None)}"


def progress_context(campaign: Campaign) -> dict[str, Any]:
    recipients = campaign.recipients
    outcome = campaign.delivered + campaign.failed
    return {
        "campaign": campaign,
        "poll_seconds": poll_seconds(campaign),
        "stage": progress_stage(campaign),
        "excluded": [row for row in excluded_rows(campaign.excluded or {}) if row[2]],
        "excluded_total": sum((campaign.excluded or {}).values()),
        "attempted": campaign.sent + campaign.delivered + campaign.failed,
        "recipients": recipients,
        # The delivered/failed split of the messages whose outcome is known.
        "delivered_share": round(100 * campaign.delivered / outcome) if outcome else 0,
        "failed_share": 100 - round(100 * campaign.delivered / outcome) if outcome else 0,
        "outcome": outcome,
        # Before the launch the page says whom it would reach (a scheduled one: as of now).
        "reach": reach_now(campaign) if campaign.status in REACH_SHOWN else None,
    }


def log_context(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    status = request.GET.get("status", "")
    if status not in Delivery.Status.values:
        status = ""
    deliveries = campaign_deliveries(campaign_id=campaign.pk, status=status or None)
    page = _page(deliveries.select_related("customer"), request, LOG_PAGE_SIZE)
    counts: dict[str, int] = {
        Delivery.Status.PENDING: campaign.pending,
        Delivery.Status.SENT: campaign.sent,
        Delivery.Status.DELIVERED: campaign.delivered,
        Delivery.Status.FAILED: campaign.failed,
        Delivery.Status.SKIPPED: campaign.skipped,
        Delivery.Status.HELD_OUT: campaign.held_out,
    }
    filters = [("", "All", campaign.audience)] + [
        (value, label, counts[value]) for value, label in Delivery.Status.choices
    ]
    log_url = reverse("campaigns:log", args=[campaign.pk])
    return {
        "campaign": campaign,
        "log_page": page,
        "log_status": status,
        "log_filters": filters,
        "log_url": log_url,
        "log_query": f"status={status}&" if status else "",
    }


def lift_percent(lift: Decimal | float) -> str:
    """'+1,025.7%': grouped like every other number on the page."""
    return f"{float(lift) * 100:+,.1f}%"


def results_context(campaign: Campaign) -> dict[str, Any]:
    if campaign.snapshot_at is None:
        return {"results_state": "not_launched"}
    results = campaign_results(campaign)
    lift = results.get("lift")
    return {
        "results_state": "ready",
        "results": results,
        "lift_percent": None if lift is None else lift_percent(lift),
        "lift_trend": "" if not lift else ("up" if lift > 0 else "down"),
    }


def summary_context(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    summary = campaign.summary if isinstance(campaign.summary, dict) else {}

    def texts(key: str) -> list[str]:
        value = summary.get(key)
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(item) for item in value if item not in (None, "")]
        return []

    return {
        "campaign": campaign,
        "summary_headline": str(summary.get("headline") or ""),
        "summary_findings": texts("findings"),
        "summary_recommendations": texts("recommendations"),
        "summary_waiting": campaign.summary_status in SUMMARY_WAITING,
        "can_summarise": _can_edit(request) and campaign.snapshot_at is not None,
    }


@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    context: dict[str, Any] = {**progress_context(campaign), "can_edit": _can_edit(request)}
    if campaign.snapshot_at is None:
        return render(request, "campaigns/detail.html", context)
    context |= log_context(request, campaign) | summary_context(request, campaign)
    try:
        context |= results_context(campaign)
    except ApplicationError as error:
        context |= {"results_state": "error", "results_error": error.message}
    return render(request, "campaigns/detail.html", context)


@require_GET
def campaign_progress_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """The counters card; it asks again every few seconds until the campaign is done."""
    campaign = _campaign_or_404(pk)
    response = render(request, "campaigns/_progress.html", progress_context(campaign))
    # The page around the counters changes with the stage (a launch brings the log and the
    # results; the end of sending settles them): htmx reloads the page once when it moves on.
    seen = request.GET.get("seen")
    if seen is not None and seen != progress_stage(campaign):
        response["HX-Refresh"] = "true"
    return response


@require_GET
def campaign_log_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    return render(request, "campaigns/_log.html", log_context(request, campaign))


@role_required(Role.MARKETER)
@require_POST
def campaign_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        user = request.user
        assert isinstance(user, User)
        campaign = campaign_cancel(campaign_id=pk, actor=user, ip_address=client_ip(request))
    except NotFoundError as error:
        raise Http404(error.message) from error
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"“{campaign.name}” is cancelled; nothing more will be sent.")
    return redirect("campaigns:detail", pk=pk)


@require_GET
def campaign_summary_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """The summary card; it polls itself while the summary is being written."""
    campaign = _campaign_or_404(pk)
    return render(request, "campaigns/_summary.html", summary_context(request, campaign))


@role_required(Role.MARKETER)
@require_POST
def campaign_summarise(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask for a new summary; htmx gets the card in its queued state, a plain form a redirect."""
    campaign = _campaign_or_404(pk)
    try:
        summary_request(campaign_id=campaign.pk)
    except NotFoundError as error:
        raise Http404(error.message) from error
    except ApplicationError as error:
        messages.error(request, error.message)
    if not _is_htmx(request):
        return redirect(reverse("campaigns:detail", args=[pk]) + "#summary")
    campaign.refresh_from_db()
    return render(request, "campaigns/_summary.html", summary_context(request, campaign))


# ---- Unsubscribe (no login) -----------------------------------------------------------------


def masked_email(email: str) -> str:
    """'a•••@example.com': enough for people to recognise their address, not to read it."""
    local, at, domain = email.partition("@")
    if not at:
        return "your address"
    return f"{local[:1]}•••@{domain}"


def sender_name() -> str:
    """Who the messages came from, as the recipient saw it (DEFAULT_FROM_EMAIL's name)."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return name or address or "Mini CRM"


def _one_click(request: HttpRequest) -> bool:
    """RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click`, with no page and no token."""
    return request.method == "POST" and request.POST.get("List-Unsubscribe") == "One-Click"


@csrf_protect
def _unsubscribe_form(request: HttpRequest, customer: Customer) -> HttpResponse:
    if request.method == "POST":
        customer_unsubscribe(customer_id=customer.pk)
    context = {
        "email": masked_email(customer.email),
        "sender": sender_name(),
        "done": request.method == "POST",
        "already": request.method == "GET" and customer.unsubscribed_at is not None,
    }
    return render(request, "campaigns/unsubscribe.html", context)


@csrf_exempt  # only the one-click POST skips the token; the page's own form is csrf_protect-ed
@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    customer_id = customer_id_from_token(token)
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
    if customer is None:
        # A page for people, not Django's bare 404: the link was most likely cut short.
        context = {"sender": sender_name()}
        return render(request, "campaigns/unsubscribe_invalid.html", context, status=404)
    if _one_click(request):
        customer_unsubscribe(customer_id=customer.pk)
        return HttpResponse("You are unsubscribed.", content_type="text/plain; charset=utf-8")
    response = _unsubscribe_form(request, customer)
    # The token in the URL goes to no other site; "no-referrer" would also make the browser
    # send `Origin: null` with the page's own form, which the CSRF check refuses.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response
