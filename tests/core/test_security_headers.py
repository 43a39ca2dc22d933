"""Security headers on pages and API answers, a Content-Security-Policy with no inline
allowances that the pages really keep, and a clean `check --deploy` under production settings."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.production_env import production_env

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "minicrm"

EXPECTED_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def _assert_security_headers(response: object) -> dict[str, list[str]]:
    for header, value in EXPECTED_HEADERS.items():
        assert response[header] == value, header  # type: ignore[index]
    policy = response["Content-Security-Policy"]  # type: ignore[index]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    directives = _directives(policy)
    assert directives["default-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"][0] == "'self'"
    assert directives["object-src"] == ["'none'"]
    return directives


@pytest.mark.django_db
def test_an_html_page_carries_every_header_and_its_inline_scripts_the_nonce(
    admin_client: Client,
) -> None:
    response = admin_client.get("/")

    assert response.status_code == 200
    directives = _assert_security_headers(response)
    nonces = [word for word in directives["script-src"] if word.startswith("'nonce-")]
    assert directives["script-src"][0] == "'self'"
    assert len(nonces) == 1
    nonce = nonces[0][len("'nonce-") : -1]
    html = response.content.decode()
    inline = [
        tag
        for tag in re.findall(r"<script\b[^>]*>", html)
        if " src=" not in tag and 'type="application/json"' not in tag
    ]
    assert inline, "the theme script runs before first paint, inline"
    assert all(f'nonce="{nonce}"' in tag for tag in inline), inline
    assert "<style" not in html
    assert " style=" not in html
    assert '"includeIndicatorStyles": false' in html


@pytest.mark.django_db
def test_each_page_gets_its_own_nonce(admin_client: Client) -> None:
    first = admin_client.get("/")["Content-Security-Policy"]
    second = admin_client.get("/")["Content-Security-Policy"]

    assert first != second


@pytest.mark.django_db
def test_an_api_answer_carries_every_header(api_client: Client) -> None:
    response = api_client.get("/api/v1/me")

    assert response.status_code == 200
    _assert_security_headers(response)


@pytest.mark.django_db
def test_the_sign_in_page_and_an_anonymous_api_refusal_carry_every_header(admin: object) -> None:
    client = Client()
    _assert_security_headers(client.get("/sign-in/"))
    _assert_security_headers(client.get("/api/v1/me"))


@pytest.mark.django_db
def test_hsts_is_sent_over_https_when_production_turns_it_on(
    admin_client: Client, settings: object
) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000  # type: ignore[attr-defined]
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True  # type: ignore[attr-defined]

    response = admin_client.get("/", secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def _app_files(pattern: str) -> list[Path]:
    return [path for path in APP.rglob(pattern) if "vendor" not in path.parts]


def test_no_template_has_inline_styles_or_event_handlers() -> None:
    """The policy refuses style="…" and onclick="…": a new one would silently do nothing."""
    offenders = []
    for path in _app_files("*.html"):
        text = path.read_text()
        for pattern in (r"\sstyle\s*=", r"<style\b", r"\son[a-z]+\s*=\s*[\"']", r"javascript:"):
            offenders += [f"{path.relative_to(ROOT)}: {pattern}" for _ in re.findall(pattern, text)]
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and "application/json" not in tag and "csp_nonce" not in tag:
                offenders.append(f"{path.relative_to(ROOT)}: inline script without the nonce")
    assert offenders == []


def test_no_static_script_builds_inline_styles() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _app_files("*.js")
        if re.search(r"style\s*=\s*[\\\"']|setAttribute\(\s*[\"']style", path.read_text())
    ]
    assert offenders == []


def test_the_policy_allows_the_oidc_provider_as_a_form_target(settings: object) -> None:
    """Browsers apply form-action to the redirect after our "Sign in with Google" form."""
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]  # type: ignore[attr-defined]
    assert "https://accounts.google.com" in directives["form-action"]


@pytest.mark.timeout(180)
def test_check_deploy_is_clean_under_production_settings(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()  # where `manage.py vendor_assets` puts the front-end packages
    env = production_env(tmp_path, hosts="crm.example.com")
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNINGS" not in done.stdout + done.stderr
