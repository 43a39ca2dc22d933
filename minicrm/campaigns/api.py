"""REST API for campaigns (filled by the campaigns API work)."""

from ninja import Router

router = Router(tags=["campaigns"])
