"""How the REST API knows who is calling: a bearer token, or the browser session with CSRF.

A request that sends `Authorization: Bearer …` is judged by that token alone: a revoked, unknown
or malformed token is a 401 "Invalid token." and the session is not tried (otherwise a bad token
on a POST would fall through to the session's CSRF check and answer a misleading 403). A request
with a live token is counted against the token's rate limit (429 past it). A request with
neither a token nor a session is a 401; only a signed-in session's write needs the CSRF token.
"""

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from minicrm.core.errors import ApplicationError

from .api_ratelimit import api_rate_limit_check
from .models import User
from .services import api_token_authenticate


class InvalidTokenError(ApplicationError):
    status_code = 401


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User:
        # Raising (rather than returning None) stops ninja from trying the session next.
        api_token = api_token_authenticate(raw_token=token.strip())
        if api_token is None:
            raise InvalidTokenError("Invalid token.")
        api_rate_limit_check(token_id=api_token.pk)
        # The token acts with its owner's role: routes check request.user like any session.
        request.user = api_token.user
        return api_token.user


class ActiveSessionAuth(SessionAuth):
    """Django's session (ninja checks the CSRF token for unsafe methods)."""

    def __call__(self, request: HttpRequest) -> Any:
        # CSRF guards a signed-in browser's ambient credentials. A caller with no session has
        # none to guard and must hear "authenticate" (401), not "CSRF check failed" (403).
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        return user if user is not None and user.is_active else None


api_auth = [BearerTokenAuth(), ActiveSessionAuth()]
