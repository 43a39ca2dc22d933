"""The README's production start works on a fresh database, as written: copy the front-end
assets, `migrate`, `collectstatic`, create the first admin, run gunicorn; then a person signs in
and gets pages and their static files, under production settings over (proxied) HTTPS."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.production_env import production_env

ROOT = Path(__file__).resolve().parents[1]
EMAIL = "owner@example.com"
PASSWORD = "a long production password"
# Every step is a fresh process on a fresh file; none may take longer than this.
STEP_SECONDS = 240

# Several processes start one after another, each bounded; the whole may outlast the default.
pytestmark = [pytest.mark.once, pytest.mark.slow, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _manage(env: dict[str, str], *arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(arguments)}:\n{result.stderr[-3000:]}"
    return result.stdout


class Browser:
    """Just enough of a browser behind an HTTPS proxy: cookies, Origin, X-Forwarded-Proto."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"https://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        headers = {"Host": f"127.0.0.1:{self.port}", "X-Forwarded-Proto": "https"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
            headers["Referer"] = f"{self.origin}{path}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie(header)
                for name, morsel in cookie.items():
                    assert morsel["secure"], f"{name} cookie without Secure"
                    self.cookies[name] = morsel.value
            return response.status, dict(response.headers.items()), text
        finally:
            connection.close()


def _wait_until_serving(browser: Browser, server: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + STEP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            browser.request("GET", "/healthz")
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"gunicorn did not answer within {STEP_SECONDS} s:\n{log.read_text()[-3000:]}")


def test_the_documented_production_start_serves_sign_in_and_pages(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    env = production_env(var_dir, superuser=(EMAIL, PASSWORD))
    _manage(env, "vendor_assets")
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    _manage(env, "createsuperuser", "--noinput")
    assert (var_dir / "static" / "staticfiles.json").is_file()

    port = _free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        browser = Browser(port)
        _wait_until_serving(browser, server, log)

        # Plain HTTP is sent to HTTPS; the proxy's HTTPS is trusted.
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        plain.request("GET", "/sign-in/", headers={"Host": f"127.0.0.1:{port}"})
        assert plain.getresponse().status == 301
        plain.close()

        status, headers, page = browser.request("GET", "/sign-in/")
        assert status == 200, page[-2000:]
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None

        # Signing in uses the login throttle, which lives in the database cache.
        status, headers, page = browser.request(
            "POST",
            "/sign-in/",
            {"csrfmiddlewaretoken": token.group(1), "email": EMAIL, "password": PASSWORD},
        )
        assert status == 302, page[-2000:]
        assert "sessionid" in browser.cookies

        status, headers, page = browser.request("GET", headers["Location"])
        assert status == 200, page[-2000:]
        assert EMAIL in page
        # Pages name their static files by content hash, and WhiteNoise serves each of them,
        # Chart.js (which names its source map) among them.
        assets = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page))
        assert "/static/vendor/htmx.min.js" not in assets
        manifest = json.loads((var_dir / "static" / "staticfiles.json").read_text())["paths"]
        assets.add(f"/static/{manifest['vendor/chart.umd.min.js']}")
        assets.add(f"/static/{manifest['vendor/chart.umd.min.js.map']}")
        assert len(assets) >= 5, assets
        served = {asset: browser.request("GET", asset)[0] for asset in sorted(assets)}
        assert served == dict.fromkeys(sorted(assets), 200)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
