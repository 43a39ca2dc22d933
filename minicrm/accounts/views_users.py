"""People in Settings (admins only: invite, revoke, change roles, deactivate) and the page where
an invited person accepts their invitation."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from minicrm.core.errors import ApplicationError

from .forms_users import InvitationAcceptForm, InvitationForm, UserRoleForm
from .invitations import (
    InvitationEmailError,
    invitation_accept_with_password,
    invitation_create,
    invitation_from_token,
    invitation_revoke,
)
from .models import AuditEvent, Role, User
from .oidc import oidc_configured
from .permissions import role_required
from .services import audit_record
from .users import user_deactivate, user_reactivate, user_role_change
from .views import settings_context

# role_required wraps require_POST, so a non-admin gets 403 whatever the method.


def _admin(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # role_required let only an admin through
    return request.user


def _settings_with_error(
    request: HttpRequest, *, status: int, invite_form: InvitationForm | None = None, error: str = ""
) -> HttpResponse:
    """The settings page again, with the invite form's errors or a people error, and a 4xx."""
    context: dict[str, Any] = settings_context(request)
    if invite_form is not None:
        context["invite_form"] = invite_form
    context["people_error"] = error
    return render(request, "accounts/settings.html", context, status=status)


@role_required(Role.ADMIN)
@require_POST
def invitation_create_view(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _settings_with_error(request, status=400, invite_form=form)
    try:
        invitation, link = invitation_create(
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=_admin(request),
            request=request,
        )
    except InvitationEmailError as error:
        messages.warning(request, error.message)
        request.session["new_invitation_link"] = error.link
        return redirect("accounts:settings")
    except ApplicationError as error:
        form.add_error("email" if error.field == "email" else None, error.message)
        return _settings_with_error(request, status=error.status_code, invite_form=form)
    messages.success(request, f"Invitation sent to {invitation.email}.")
    # Shown once, for an admin who would rather pass the link on by hand.
    request.session["new_invitation_link"] = link
    return redirect("accounts:settings")


@role_required(Role.ADMIN)
@require_POST
def invitation_revoke_view(request: HttpRequest, invitation_id: int) -> HttpResponse:
    try:
        invitation = invitation_revoke(
            invitation_id=invitation_id, actor=_admin(request), request=request
        )
    except ApplicationError as error:
        return _settings_with_error(request, status=error.status_code, error=error.message)
    messages.success(request, f"Invitation for {invitation.email} revoked.")
    return redirect("accounts:settings")


@role_required(Role.ADMIN)
@require_POST
def user_role_view(request: HttpRequest, user_id: int) -> HttpResponse:
    form = UserRoleForm(request.POST)
    if not form.is_valid():
        return _settings_with_error(request, status=400, error="Choose a role.")
    try:
        person = user_role_change(
            user_id=user_id, role=form.cleaned_data["role"], actor=_admin(request), request=request
        )
    except ApplicationError as error:
        return _settings_with_error(request, status=error.status_code, error=error.message)
    messages.success(request, f"{person.email} is now {person.get_role_display().lower()}.")
    return redirect("accounts:settings")


@role_required(Role.ADMIN)
@require_POST
def user_deactivate_view(request: HttpRequest, user_id: int) -> HttpResponse:
    try:
        person = user_deactivate(user_id=user_id, actor=_admin(request), request=request)
    except ApplicationError as error:
        return _settings_with_error(request, status=error.status_code, error=error.message)
    messages.success(request, f"{person.email} can no longer sign in; their tokens are revoked.")
    if person.pk == request.user.pk:
        return redirect("accounts:login")
    return redirect("accounts:settings")


@role_required(Role.ADMIN)
@require_POST
def user_reactivate_view(request: HttpRequest, user_id: int) -> HttpResponse:
    try:
        person = user_reactivate(user_id=user_id, actor=_admin(request), request=request)
    except ApplicationError as error:
        return _settings_with_error(request, status=error.status_code, error=error.message)
    messages.success(request, f"{person.email} can sign in again.")
    return redirect("accounts:settings")


@login_not_required
@require_http_methods(["GET", "POST"])
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitation_from_token(token)
    except ApplicationError as error:
        return render(
            request,
            "accounts/invitation_invalid.html",
            {"message": error.message},
            status=error.status_code,
        )
    form = InvitationAcceptForm(request.POST or None, invitation=invitation)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation_accept_with_password(
                invitation=invitation,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password"],
                request=request,
            )
        except ApplicationError as error:
            return render(
                request,
                "accounts/invitation_invalid.html",
                {"message": error.message},
                status=error.status_code,
            )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        audit_record(
            action=AuditEvent.Action.SIGN_IN, actor=user, target=user.email, request=request
        )
        messages.success(request, "Welcome! Your account is ready.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(
        request,
        "accounts/invitation_accept.html",
        {
            "form": form,
            "invitation": invitation,
            "oidc_configured": oidc_configured(),
        },
        status=400 if request.method == "POST" else 200,
    )
