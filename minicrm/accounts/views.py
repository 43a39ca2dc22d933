"""Sign-in, sign-out, first-run setup and the settings page (API tokens, audit log)."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from minicrm.core.errors import ApplicationError

from .forms import ApiTokenForm, FirstAdminForm, SignInForm, SignInLinkForm
from .forms_users import InvitationForm
from .models import AuditEvent, Role, User
from .selectors import (
    admin_exists,
    api_token_list,
    audit_event_list,
    invitation_pending_list,
    user_list,
)
from .services import (
    api_token_create,
    api_token_revoke,
    audit_record,
    client_ip,
    first_admin_create,
)
from .sign_in_link import sign_in_link_request, sign_in_link_use, sign_in_link_user


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return str(settings.LOGIN_REDIRECT_URL)


@login_not_required
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    if not admin_exists():
        return redirect("accounts:first_admin")
    if request.user.is_authenticated:
        return redirect(_safe_next(request))
    form = SignInForm(request, data=request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and form.user is not None:
            login(request, form.user)
            audit_record(
                action=AuditEvent.Action.SIGN_IN,
                actor=form.user,
                target=form.user.email,
                request=request,
            )
            return redirect(_safe_next(request))
        audit_record(
            action=AuditEvent.Action.SIGN_IN_FAILED,
            target=request.POST.get("email", "")[:200],
            details={"ip": client_ip(request), "throttled": form.retry_after > 0},
            request=request,
        )
        if form.retry_after:
            status = 429
    response = render(
        request,
        "accounts/sign_in.html",
        {"form": form, "link_form": SignInLinkForm(), "next": request.GET.get("next", "")},
        status=status,
    )
    if form.retry_after:
        response["Retry-After"] = str(form.retry_after)
    return response


@login_not_required
@require_POST
def sign_in_link_request_view(request: HttpRequest) -> HttpResponse:
    """Ask for a one-time sign-in link by email; the answer never says if the account exists."""
    form = SignInLinkForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "accounts/sign_in.html",
            {"form": SignInForm(request), "link_form": form, "next": ""},
            status=400,
        )
    sign_in_link_request(email=form.cleaned_data["email"], request=request)
    context = {
        "email": form.cleaned_data["email"],
        "link_minutes": settings.LOGIN_LINK_MAX_AGE_SECONDS // 60,
    }
    return render(request, "accounts/sign_in_link_sent.html", context)


@login_not_required
@require_http_methods(["GET", "POST"])
def sign_in_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and POST signs in: mail scanners that open links must not spend them."""
    if request.method == "GET":
        user = sign_in_link_user(token=token)
        context = {"link_user": user, "link_minutes": settings.LOGIN_LINK_MAX_AGE_SECONDS // 60}
        return render(request, "accounts/sign_in_link.html", context, status=200 if user else 400)
    if sign_in_link_use(token=token, request=request) is None:
        context = {"link_user": None, "link_minutes": settings.LOGIN_LINK_MAX_AGE_SECONDS // 60}
        return render(request, "accounts/sign_in_link.html", context, status=400)
    return redirect(settings.LOGIN_REDIRECT_URL)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    user = request.user if isinstance(request.user, User) else None
    audit_record(
        action=AuditEvent.Action.SIGN_OUT,
        actor=user,
        target=user.email if user else "",
        request=request,
    )
    logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)


@login_not_required
@require_http_methods(["GET", "POST"])
def first_admin(request: HttpRequest) -> HttpResponse:
    if admin_exists():
        # Once an admin exists this page does not exist either: accounts come from admins.
        raise Http404("Setup is complete.")
    form = FirstAdminForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = first_admin_create(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                full_name=form.cleaned_data["full_name"],
                request=request,
            )
        except ApplicationError as error:
            form.add_error(None, error.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome! Your admin account is ready.")
            return redirect("web:dashboard")
    return render(request, "accounts/first_admin.html", {"form": form})


def settings_context(request: HttpRequest) -> dict[str, Any]:
    """What the settings page shows; the people views render it again with a form's errors."""
    user = request.user
    assert isinstance(user, User)
    is_admin = user.has_role(Role.ADMIN)
    return {
        "token_form": ApiTokenForm(),
        "tokens": api_token_list(user=user)[:100],
        "new_token": request.session.pop("new_api_token", None),
        # The latest few; the audit page browses and filters the rest.
        "audit_events": audit_event_list()[:5] if is_admin else [],
        "users": user_list()[:200] if is_admin else [],
        "invitations": invitation_pending_list()[:100] if is_admin else [],
        "invite_form": InvitationForm(),
        "roles": Role.choices,
        "new_invitation_link": request.session.pop("new_invitation_link", None),
        "ai_provider": settings.AI_PROVIDER,
        "ai_model": settings.GEMINI_MODEL
        if settings.AI_PROVIDER == "gemini"
        else "built-in narrator",
    }


def settings_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/settings.html", settings_context(request))


@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        _token, raw = api_token_create(user=user, name=form.cleaned_data["name"], request=request)
        # Shown once on the next page, then gone: only its digest is stored.
        request.session["new_api_token"] = raw
        messages.success(request, "Token created. Copy it now: it will not be shown again.")
    else:
        messages.error(request, "Give the token a name.")
    return redirect("accounts:settings")


@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    try:
        token = api_token_revoke(token_id=token_id, actor=user, request=request)
    except ApplicationError as error:
        raise Http404(error.message) from error
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:settings")
