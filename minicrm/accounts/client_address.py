"""The address a request came from, as far as we can trust it (throttling, audit)."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or behind our proxy (MINICRM_BEHIND_PROXY) the entry
    our proxies added to X-Forwarded-For.

    Each proxy appends the address it saw, so with N trusted proxies the client is the N-th
    entry from the right; anything further left was written by the client and may be forged.
    Without the proxy setting the header is ignored: anyone could send one.
    """
    if request is None:
        return None
    remote = _valid(request.META.get("REMOTE_ADDR"))
    if not settings.MINICRM_BEHIND_PROXY:
        return remote
    forwarded = [
        entry.strip()
        for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if entry.strip()
    ]
    count = settings.MINICRM_TRUSTED_PROXY_COUNT
    if len(forwarded) < count:
        # Fewer entries than proxies: the request skipped one of them, so only the socket counts.
        return remote
    return _valid(forwarded[-count]) or remote
