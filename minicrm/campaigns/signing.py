"""The vendor contract's signature: `X-MiniCRM-Signature: sha256=<hex HMAC-SHA256 of the body>`.

The same secret (MINICRM_WEBHOOK_SECRET) signs the batches we send and the receipts we accept.
"""

import hashlib
import hmac

from django.conf import settings

SIGNATURE_HEADER = "X-MiniCRM-Signature"
_PREFIX = "sha256="


def webhook_secret() -> str:
    return settings.MINICRM_WEBHOOK_SECRET


def sign(body: bytes, secret: str | None = None) -> str:
    """The header value for `body`."""
    key = (secret if secret is not None else webhook_secret()).encode()
    return _PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, header: str | None, secret: str | None = None) -> bool:
    """True only for a well-formed header carrying the body's signature (compared in constant
    time). With no secret configured nothing is valid: receipts cannot be accepted unsigned."""
    key = secret if secret is not None else webhook_secret()
    if not key or not header or not header.startswith(_PREFIX):
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a forged header may hold
    # any), and that must be a refusal, not an error.
    return hmac.compare_digest(sign(body, key).encode(), header.strip().encode(errors="replace"))
