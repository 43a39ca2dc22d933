"""The unsubscribe link in every message: signed, so it needs no login and cannot be guessed.

The token carries the customer's id and an HMAC of it (Django's signing, with the secret key and
a salt of its own), so a link works for as long as the secret key does and only for its customer.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from minicrm.customers.models import Customer

_SALT = "minicrm.campaigns.unsubscribe"


def unsubscribe_token(customer_id: int) -> str:
    return signing.Signer(salt=_SALT).sign(str(customer_id))


def customer_id_from_token(token: str) -> int | None:
    """The customer the token was made for, or None for a forged or damaged token."""
    try:
        return int(signing.Signer(salt=_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def unsubscribe_url(customer_id: int) -> str:
    """The absolute link (MINICRM_PUBLIC_URL is where recipients reach this CRM)."""
    path = reverse("campaigns:unsubscribe", args=[unsubscribe_token(customer_id)])
    return settings.MINICRM_PUBLIC_URL.rstrip("/") + path


def customer_unsubscribe(*, customer_id: int) -> bool:
    """Unsubscribe the customer from every campaign; True if they were subscribed until now.

    Idempotent: the first time is kept."""
    changed = Customer.objects.filter(pk=customer_id, unsubscribed_at__isnull=True).update(
        unsubscribed_at=timezone.now()
    )
    return bool(changed)
