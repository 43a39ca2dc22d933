"""The two URLs of the OIDC sign-in: its start (the sign-in page's button) and the callback."""

import requests
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from .oidc import VerifyingOidcAdapter, oidc_configured, oidc_provider_unreachable

# What reading the provider's discovery document can raise before allauth's own error handling
# applies: unreachable, not JSON, or a field missing (KeyError from allauth's lookups).
PROVIDER_ERRORS = (OAuth2Error, requests.RequestException, KeyError)


def _unavailable(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/oidc_start.html", {"configured": False}, status=404)


@login_not_required
@require_http_methods(["GET", "POST"])
def oidc_login(request: HttpRequest, provider_id: str) -> HttpResponse:
    """POST leaves for the provider. GET (a link, a bookmark) shows the button first: a page of
    another site cannot send a browser through the provider's sign-in without a click here."""
    if not oidc_configured(provider_id):
        return _unavailable(request)
    if request.method == "GET":
        context = {
            "configured": True,
            "provider_name": settings.OIDC_PROVIDER_NAME,
            "next": request.GET.get("next", ""),
        }
        return render(request, "accounts/oidc_start.html", context)
    view = OAuth2LoginView.adapter_view(VerifyingOidcAdapter(request, provider_id))
    try:
        return view(request)
    except PROVIDER_ERRORS as error:
        return oidc_provider_unreachable(request, error)


@login_not_required
@require_GET
def oidc_callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    """Where the provider sends the browser back with a code (or an error) and our state."""
    if not oidc_configured(provider_id):
        return _unavailable(request)
    view = OAuth2CallbackView.adapter_view(VerifyingOidcAdapter(request, provider_id))
    try:
        return view(request)
    except PROVIDER_ERRORS as error:
        return oidc_provider_unreachable(request, error)
