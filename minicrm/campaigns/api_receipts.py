"""POST /deliveries/receipts: the messaging vendor's signed receipts (no user token)."""

from ninja import Router

router = Router(tags=["deliveries"])
