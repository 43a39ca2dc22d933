"""POST /deliveries/receipts: the messaging vendor's signed receipts (no user token).

The vendor is not a user: the route is authenticated by the `X-MiniCRM-Signature` header alone,
an HMAC of the raw body with MINICRM_WEBHOOK_SECRET, checked before the body is parsed. A missing
or wrong signature, or no secret configured, is a 401 with nothing applied.
"""

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.security import APIKeyHeader
from pydantic import BaseModel, field_validator

from minicrm.core.errors import ApplicationError
from minicrm.core.limits import MAX_YEAR, MIN_YEAR

from .receipts import MAX_RECEIPTS_PER_BATCH, Receipt, receipts_apply
from .signing import SIGNATURE_HEADER, signature_valid, webhook_secret

router = Router(tags=["deliveries"])


class SignatureRefusedError(ApplicationError):
    status_code = 401


class VendorSignatureAuth(APIKeyHeader):
    """HMAC-SHA256 of the raw body: `X-MiniCRM-Signature: sha256=<hex>`."""

    param_name = SIGNATURE_HEADER

    def authenticate(self, request: HttpRequest, key: str | None) -> str:
        # Raising (rather than returning None) keeps ninja's "send a valid API token" message
        # away from a vendor, who has no token to send.
        if not webhook_secret():
            raise SignatureRefusedError("Receipts are refused: no webhook secret is configured.")
        if not key:
            raise SignatureRefusedError(f"Sign the body in the {SIGNATURE_HEADER} header.")
        if not signature_valid(request.body, key):
            raise SignatureRefusedError(f"The {SIGNATURE_HEADER} header does not match the body.")
        return "vendor"


class ReceiptIn(BaseModel):
    # A plain pydantic model, not a ninja Schema: a batch holds up to 10,000 of them, and
    # Schema's per-object validator (for ORM objects) costs a third of the request.
    vendor_id: str = Field(description="The id the vendor answered when it accepted the message")
    status: Literal["delivered", "failed"]
    reason: str | None = Field(None, description="Why it failed (kept with the delivery)")
    at: datetime | None = Field(
        None, description="When it was delivered or failed (a time without a zone is UTC)"
    )

    @field_validator("at")
    @classmethod
    def at_in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"The year is between {MIN_YEAR} and {MAX_YEAR}.")
        return value


class ReceiptsIn(Schema):
    receipts: list[ReceiptIn] = Field(max_length=MAX_RECEIPTS_PER_BATCH)


class ReceiptsAppliedOut(Schema):
    """How each receipt of the batch was counted; the four add up to the batch's size."""

    applied: int = Field(description="Changed a delivery to delivered or failed")
    duplicate: int = Field(description="The delivery already had that status")
    unknown: int = Field(description="No delivery waiting for a receipt has that vendor id")
    stale: int = Field(description="Older than the other final status already applied")


class ReceiptSignatureErrorOut(Schema):
    """A missing or wrong signature, or no webhook secret configured: nothing was applied."""

    detail: str


@router.post(
    "/deliveries/receipts",
    auth=VendorSignatureAuth(),
    response={200: ReceiptsAppliedOut, 401: ReceiptSignatureErrorOut},
    summary=f"Apply up to {MAX_RECEIPTS_PER_BATCH:,} signed delivery receipts from the vendor",
    description=(
        "Authenticated only by `X-MiniCRM-Signature: sha256=<hex HMAC-SHA256 of the raw body "
        "with the webhook secret>`, no API token. Idempotent and out-of-order safe: a repeated "
        "receipt is `duplicate`, a delivered or failed delivery never goes back to sent, and "
        "between delivered and failed the receipt with the later `at` wins (`stale` otherwise). "
        "A vendor id not recorded yet is `unknown`: post it again later."
    ),
)
def deliveries_receipts(request: HttpRequest, payload: ReceiptsIn) -> dict[str, int]:
    receipts = [
        Receipt(vendor_id=r.vendor_id, status=r.status, reason=r.reason or "", at=r.at)
        for r in payload.receipts
    ]
    return receipts_apply(receipts)
