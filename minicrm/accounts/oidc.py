"""Sign in with Google or any OpenID Connect provider, on top of django-allauth's OIDC client.

allauth runs the authorization code flow (state, PKCE); this module checks the ID token itself,
decides who may come in (known active users; unknown emails only with an open invitation or an
allowed domain) and signs them in, so allauth never creates accounts or shows its own pages.
"""

import logging
from typing import Any

import jwt
from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter, get_adapter
from allauth.socialaccount.models import SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.base.constants import AuthError
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from minicrm.core.errors import ApplicationError

from .invitations import email_normalize, invitation_accept, invitation_open_for
from .models import AuditEvent, Role, User
from .services import audit_record

logger = logging.getLogger(__name__)

# Public-key algorithms only: with a symmetric one (HS256) the provider's public key could be
# used as the HMAC secret by anyone, and "none" is no signature at all.
ID_TOKEN_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Clocks of the provider and ours may differ a little (exp, iat, nbf).
CLOCK_SKEW_SECONDS = 60
# allauth keeps the subject in a column of this size (SOCIALACCOUNT_UID_MAX_LENGTH).
SUBJECT_MAX_LENGTH = 191
# The backend the session records: ModelBackend, the only one (get_user checks is_active).
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


class IdTokenInvalid(OAuth2Error):
    """The provider's answer cannot be trusted; `reason` is short and goes to the audit trail."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OidcRefused(Exception):
    """A genuine identity the gate does not let in; `message` is shown on the sign-in page."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# --- Configuration ------------------------------------------------------------------------------
def oidc_configured(provider_id: str | None = None) -> bool:
    """True when a client id is set (and `provider_id`, if given, is the configured provider)."""
    if not settings.OIDC_CLIENT_ID:
        return False
    return provider_id is None or provider_id == settings.OIDC_PROVIDER_ID


def _accepted_issuers(issuer: str) -> list[str]:
    # Google's own documentation allows its ID tokens either form of its issuer.
    if issuer == "https://accounts.google.com":
        return [issuer, "accounts.google.com"]
    return [issuer]


# --- The ID token -------------------------------------------------------------------------------
def _signing_key(*, jwks: dict[str, Any], kid: str | None, algorithm: str) -> jwt.PyJWK:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise IdTokenInvalid("bad_jwks", "The provider's key set has no keys.")
    candidates = [
        key
        for key in keys
        if isinstance(key, dict)
        and (kid is None or key.get("kid") == kid)
        and key.get("use", "sig") == "sig"
        and key.get("alg", algorithm) == algorithm
    ]
    if len(candidates) != 1:
        raise IdTokenInvalid("unknown_key", f"No single signing key {kid!r} for {algorithm}.")
    try:
        return jwt.PyJWK(candidates[0], algorithm=algorithm)
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("unknown_key", f"Unusable signing key {kid!r}: {exc}") from exc


def id_token_claims(
    *, id_token: str, jwks: dict[str, Any], issuer: str, client_id: str
) -> dict[str, Any]:
    """The claims of a valid ID token: signed by one of the provider's keys with a public-key
    algorithm, issued by the provider, for us (aud, and azp when there are several audiences),
    not expired, with a subject. Anything else raises IdTokenInvalid naming the reason.

    allauth skips the signature when the token came straight from the token endpoint (OIDC
    Core 3.1.3.7 allows it over TLS); we check it anyway, it costs one JWKS fetch per sign-in.
    """
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("malformed", "The ID token is not a JWT.") from exc
    algorithm = header.get("alg")
    if algorithm not in ID_TOKEN_ALGORITHMS:
        raise IdTokenInvalid("algorithm", f"ID token algorithm {algorithm!r} is not accepted.")
    key = _signing_key(jwks=jwks, kid=header.get("kid"), algorithm=algorithm)
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key=key,
            algorithms=[algorithm],
            audience=client_id,
            issuer=_accepted_issuers(issuer),
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.InvalidSignatureError as exc:
        raise IdTokenInvalid("bad_signature", "The ID token signature is invalid.") from exc
    except jwt.ExpiredSignatureError as exc:
        raise IdTokenInvalid("expired", "The ID token has expired.") from exc
    except jwt.InvalidAudienceError as exc:
        raise IdTokenInvalid("wrong_audience", "The ID token is for another client.") from exc
    except jwt.InvalidIssuerError as exc:
        raise IdTokenInvalid("wrong_issuer", "The ID token is from another issuer.") from exc
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("invalid", f"The ID token is invalid: {exc}") from exc
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise IdTokenInvalid("wrong_audience", "The ID token was issued to another party.")
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject or len(subject) > SUBJECT_MAX_LENGTH:
        raise IdTokenInvalid("invalid", "The ID token has no usable subject.")
    return claims


def _get_json(url: str, *, headers: dict[str, str] | None = None) -> Any:
    with get_adapter().get_requests_session() as session:
        response = session.get(url, headers=headers)
        response.raise_for_status()
        return response.json()


class VerifyingOidcAdapter(OpenIDConnectOAuth2Adapter):
    """allauth's OIDC adapter with our ID token checks (id_token_claims) in place of its own."""

    @property
    def openid_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().openid_config
        needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if missing := [key for key in needed if not config.get(key)]:
            raise IdTokenInvalid("bad_discovery", f"The provider's discovery lacks {missing}.")
        return config

    def complete_login(
        self, request: HttpRequest, app: SocialApp, token: SocialToken, **kwargs: Any
    ) -> SocialLogin:
        id_token = kwargs["response"].get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise IdTokenInvalid("missing", "The provider answered without an ID token.")
        config = self.openid_config
        claims = id_token_claims(
            id_token=id_token,
            jwks=_get_json(config["jwks_uri"]),
            issuer=config["issuer"],
            client_id=app.client_id,
        )
        data: dict[str, Any] = {"id_token": claims}
        if config.get("userinfo_endpoint"):
            # Some providers (Okta) keep email claims out of the ID token; userinfo must be
            # about the same subject (OIDC Core 5.3.2), or it is someone else's data.
            userinfo = _get_json(
                config["userinfo_endpoint"], headers={"Authorization": f"Bearer {token.token}"}
            )
            if not isinstance(userinfo, dict) or userinfo.get("sub") != claims["sub"]:
                raise IdTokenInvalid("userinfo_subject", "Userinfo is about another subject.")
            data["userinfo"] = userinfo
        return self.get_provider().sociallogin_from_response(request, data)


# --- The gate -----------------------------------------------------------------------------------
def identity_claims(extra_data: dict[str, Any]) -> dict[str, Any]:
    """The verified ID token's claims, completed by userinfo (same subject, checked above)."""
    return {**extra_data.get("id_token", {}), **extra_data.get("userinfo", {})}


def _is_true(value: object) -> bool:
    # Some providers send the claim as the string "true".
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _signup_domain_allowed(email: str) -> bool:
    return email.rpartition("@")[2] in settings.MINICRM_ALLOWED_SIGNUP_DOMAINS


@transaction.atomic
def _user_create_for_oidc(*, email: str, full_name: str, request: HttpRequest | None) -> User:
    invitation = invitation_open_for(email)
    if invitation is not None:
        role = Role(invitation.role)
    elif _signup_domain_allowed(email):
        role = Role(settings.MINICRM_DEFAULT_SIGNUP_ROLE)
    else:
        raise OidcRefused(
            "not_invited",
            f"There is no account for {email} yet. Ask an admin to invite you.",
        )
    user = User.objects.create_user(
        email,
        password=None,  # unusable: this person signs in through the provider
        full_name=full_name[:150],
        role=role,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    if invitation is not None:
        try:
            invitation_accept(invitation=invitation, user=user, request=request)
        except ApplicationError as error:
            # Accepted or revoked a moment ago: the user created above is rolled back.
            raise OidcRefused("invitation_unusable", error.message) from error
    return user


def oidc_user_for_sign_in(*, claims: dict[str, Any], request: HttpRequest | None) -> User:
    """The user the provider's verified identity signs in as, created on a first sign-in the
    gate allows. Raises OidcRefused (nothing written) otherwise."""
    raw_email = claims.get("email")
    if not isinstance(raw_email, str) or "@" not in raw_email:
        raise OidcRefused("no_email", "The provider did not share an email address.")
    email = email_normalize(raw_email)
    if not _is_true(claims.get("email_verified")):
        raise OidcRefused(
            "email_unverified",
            f"{settings.OIDC_PROVIDER_NAME} has not verified {email}, so it cannot sign in here.",
        )
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        full_name = claims.get("name") if isinstance(claims.get("name"), str) else ""
        try:
            user = _user_create_for_oidc(email=email, full_name=full_name or "", request=request)
        except IntegrityError:
            # The same person's first sign-in in another tab won the race: theirs is ours.
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                raise
    if not user.is_active:
        raise OidcRefused("deactivated", "This account is deactivated. Ask an admin.")
    return user


# --- allauth's hooks ----------------------------------------------------------------------------
def _refusal_response(
    request: HttpRequest, *, reason: str, message: str, email: str = ""
) -> HttpResponse:
    audit_record(
        action=AuditEvent.Action.SIGN_IN_FAILED,
        target=email,
        details={"method": "oidc", "reason": reason},
        request=request,
    )
    messages.error(request, message)
    return redirect("accounts:login")


def _next_url(request: HttpRequest, sociallogin: SocialLogin) -> str:
    target = sociallogin.state.get("next") or ""
    if isinstance(target, str) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return str(settings.LOGIN_REDIRECT_URL)


class OidcSocialAccountAdapter(DefaultSocialAccountAdapter):
    """Signs the verified identity in (or refuses it) right after the provider's answer, so
    allauth's own sign-up, email and account pages are never reached."""

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        claims = identity_claims(sociallogin.account.extra_data)
        try:
            user = oidc_user_for_sign_in(claims=claims, request=request)
        except OidcRefused as refusal:
            email = claims.get("email") if isinstance(claims.get("email"), str) else ""
            raise ImmediateHttpResponse(
                _refusal_response(
                    request, reason=refusal.reason, message=refusal.message, email=email or ""
                )
            ) from refusal
        login(request, user, backend=SESSION_BACKEND)
        audit_record(
            action=AuditEvent.Action.SIGN_IN,
            actor=user,
            target=user.email,
            details={"method": "oidc"},
            request=request,
        )
        raise ImmediateHttpResponse(redirect(_next_url(request, sociallogin)))

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: str | None = None,
        exception: BaseException | None = None,
        extra_context: dict[str, Any] | None = None,
    ) -> None:
        name = settings.OIDC_PROVIDER_NAME
        if error == AuthError.CANCELLED:
            reason, message = "cancelled", f"Sign-in with {name} was cancelled."
        else:
            reason = getattr(exception, "reason", "") or (
                "provider_error" if exception is not None else "bad_state"
            )
            message = f"Sign-in with {name} did not succeed. Please try again."
            logger.warning("OIDC sign-in failed (%s): %r", reason, exception)
        raise ImmediateHttpResponse(_refusal_response(request, reason=reason, message=message))

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False  # accounts come from oidc_user_for_sign_in's gate only


class ClosedAccountAdapter(DefaultAccountAdapter):
    """allauth's account side is unused (password sign-in is our own form): no sign-ups."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False


def oidc_provider_unreachable(request: HttpRequest, error: Exception) -> HttpResponse:
    """The answer when the provider's discovery cannot be read as the flow starts."""
    logger.warning("OIDC provider unreachable: %r", error)
    return _refusal_response(
        request,
        reason="provider_unreachable",
        message=f"{settings.OIDC_PROVIDER_NAME} cannot be reached right now. Please try again.",
    )
