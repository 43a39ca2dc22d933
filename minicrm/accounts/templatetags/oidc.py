"""{% oidc_sign_in_button next %}: the "Sign in with <provider>" form, when one is configured."""

from typing import Any

from django import template
from django.conf import settings
from django.urls import reverse

from minicrm.accounts.oidc import oidc_configured

register = template.Library()


@register.inclusion_tag("accounts/_oidc_button.html", takes_context=True)
def oidc_sign_in_button(context: template.Context, next_url: str = "") -> dict[str, Any]:
    if not oidc_configured():
        return {"oidc_url": ""}
    return {
        "oidc_url": reverse(
            "openid_connect_login", kwargs={"provider_id": settings.OIDC_PROVIDER_ID}
        ),
        "provider_name": settings.OIDC_PROVIDER_NAME,
        "next": next_url,
        # {% csrf_token %} in the included template reads it from its own context.
        "csrf_token": context.get("csrf_token", ""),
    }
