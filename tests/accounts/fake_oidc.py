"""A fake OpenID Connect provider on 127.0.0.1 for the sign-in tests.

It serves discovery, /authorize (issues a one-time code bound to the PKCE challenge), /token
(checks the client's secret, the redirect URI and the S256 code_verifier, then returns an RS256
ID token signed with a key made here), /jwks and /userinfo. What it refused is kept in `errors`,
so a test can tell "our side refused" from "the fake refused".
"""

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "minicrm-test-client"
CLIENT_SECRET = "minicrm-test-secret"  # a test double's secret, not a real one
KEY_ID = "fake-key-1"

# How /token signs or shapes the ID token.
TOKEN_MODES = ("valid", "bad_signature", "wrong_audience", "expired", "wrong_issuer")
# An endpoint's answer: status, JSON body, extra headers.
Answer = tuple[int, dict[str, Any] | None, dict[str, str] | None]


@dataclass(frozen=True)
class Identity:
    """The person the fake says signed in."""

    sub: str = "fake-subject-1"
    email: str = "ada@example.com"
    email_verified: bool = True
    name: str = "Ada Lovelace"

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
        }


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    identity: Identity


@dataclass
class FakeOidcProvider:
    key: rsa.RSAPrivateKey
    other_key: rsa.RSAPrivateKey  # the attacker's: same kid, not in the JWKS
    identity: Identity = field(default_factory=Identity)
    token_mode: str = "valid"
    userinfo_sub: str | None = None  # set to answer userinfo about someone else
    errors: list[str] = field(default_factory=list)
    authorize_params: list[dict[str, str]] = field(default_factory=list)
    token_params: list[dict[str, str]] = field(default_factory=list)
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _access_tokens: dict[str, Identity] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reset(self) -> None:
        with self._lock:
            self.identity = Identity()
            self.token_mode = "valid"
            self.userinfo_sub = None
            self.errors.clear()
            self.authorize_params.clear()
            self.token_params.clear()
            self._grants.clear()
            self._access_tokens.clear()

    def sign_in_as(self, **changes: Any) -> Identity:
        self.identity = replace(Identity(), **changes)
        return self.identity

    # --- Lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider._handle(self, "GET")

            def do_POST(self) -> None:
                provider._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests assert on `errors` instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- HTTP -----------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query))
        routes = {
            ("GET", "/.well-known/openid-configuration"): self._discovery,
            ("GET", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("GET", "/jwks"): self._jwks,
            ("GET", "/userinfo"): self._userinfo,
        }
        route = routes.get((method, url.path))
        if route is None:
            self._send(handler, 404, {"error": "not_found"})
            return
        with self._lock:
            status, body, headers = route(handler, query)
        self._send(handler, status, body, headers)

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _refuse(self, error: str, status: int = 400) -> Answer:
        self.errors.append(error)
        return status, {"error": error}, None

    def _discovery(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> Answer:
        base = self.base_url
        return (
            200,
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
            },
            None,
        )

    def _authorize(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> Answer:
        self.authorize_params.append(query)
        if query.get("client_id") != CLIENT_ID:
            return self._refuse("authorize: unknown client_id")
        if query.get("response_type") != "code":
            return self._refuse("authorize: response_type is not code")
        if "openid" not in query.get("scope", "").split():
            return self._refuse("authorize: no openid scope")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return self._refuse("authorize: no S256 PKCE challenge")
        if not query.get("redirect_uri") or not query.get("state"):
            return self._refuse("authorize: no redirect_uri or state")
        code = secrets.token_urlsafe(24)
        self._grants[code] = _Grant(
            client_id=CLIENT_ID,
            redirect_uri=query["redirect_uri"],
            code_challenge=query["code_challenge"],
            identity=self.identity,
        )
        location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return 302, None, {"Location": location}

    def _client_credentials(
        self, handler: BaseHTTPRequestHandler, form: dict[str, str]
    ) -> tuple[str, str]:
        authorization = handler.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            return client_id, secret
        return form.get("client_id", ""), form.get("client_secret", "")

    def _token(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> Answer:
        length = int(handler.headers.get("Content-Length", "0"))
        form = dict(parse_qsl(handler.rfile.read(length).decode()))
        self.token_params.append(form)
        if self._client_credentials(handler, form) != (CLIENT_ID, CLIENT_SECRET):
            return self._refuse("token: bad client credentials", 401)
        if form.get("grant_type") != "authorization_code":
            return self._refuse("token: grant_type is not authorization_code")
        grant = self._grants.pop(form.get("code", ""), None)  # a code is good once
        if grant is None:
            return self._refuse("token: unknown or used code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._refuse("token: redirect_uri differs from /authorize")
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if not verifier or challenge != grant.code_challenge:
            return self._refuse("token: code_verifier does not match the challenge")
        access_token = secrets.token_urlsafe(24)
        self._access_tokens[access_token] = grant.identity
        return (
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": self.id_token(grant.identity),
            },
            None,
        )

    def id_token(self, identity: Identity) -> str:
        now = int(time.time())
        claims = {
            "iss": self.base_url,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            **identity.claims(),
        }
        key = self.key
        if self.token_mode == "bad_signature":
            key = self.other_key
        elif self.token_mode == "wrong_audience":
            claims["aud"] = "another-client"
        elif self.token_mode == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif self.token_mode == "wrong_issuer":
            claims["iss"] = "https://issuer.invalid"
        elif self.token_mode != "valid":
            raise ValueError(f"unknown token mode {self.token_mode!r}")
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KEY_ID})

    def _jwks(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> Answer:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return 200, {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}, None

    def _userinfo(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> Answer:
        authorization = handler.headers.get("Authorization", "")
        identity = self._access_tokens.get(authorization.removeprefix("Bearer "))
        if not authorization.startswith("Bearer ") or identity is None:
            return self._refuse("userinfo: bad access token", 401)
        claims = identity.claims()
        if self.userinfo_sub is not None:
            claims["sub"] = self.userinfo_sub
        return 200, claims, None


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def fake_provider_start() -> FakeOidcProvider:
    provider = FakeOidcProvider(key=rsa_key(), other_key=rsa_key())
    provider.start()
    return provider


PROVIDER_ID = "fake"
PROVIDER_NAME = "Fake ID"


def oidc_settings_apply(settings: Any, server_url: str) -> None:
    """Point the CRM at a provider, as config/settings/base.py does from the OIDC_* variables."""
    settings.OIDC_PROVIDER_ID = PROVIDER_ID
    settings.OIDC_PROVIDER_NAME = PROVIDER_NAME
    settings.OIDC_SERVER_URL = server_url
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.MINICRM_ALLOWED_SIGNUP_DOMAINS = ["allowed.example"]
    settings.MINICRM_DEFAULT_SIGNUP_ROLE = "viewer"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": PROVIDER_ID,
                    "name": PROVIDER_NAME,
                    "client_id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": server_url, "oauth_pkce_enabled": True},
                }
            ],
        }
    }
