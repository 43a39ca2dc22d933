"""Account routes of the REST API."""

from django.http import HttpRequest
from ninja import Router, Schema

router = Router(tags=["accounts"])


class MeOut(Schema):
    id: int
    email: str
    full_name: str
    role: str


@router.get("/me", response=MeOut, summary="The signed-in user or the owner of the API token")
def me(request: HttpRequest) -> object:
    return request.auth  # type: ignore[attr-defined]
