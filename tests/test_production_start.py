"""The README's production start works on a fresh database, as written: copy the front-end
assets, `migrate`, `collectstatic`, create the first admin, run gunicorn with
config/gunicorn.conf.py; then a person signs in and gets pages and their static files (hashed,
compressed, cached for a year), under production settings over (proxied) HTTPS; /readyz says
ready, and every line the server wrote is a JSON object."""

import gzip
import http.client
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.ports import free_port
from tests.production_env import production_env

ROOT = Path(__file__).resolve().parents[1]
EMAIL = "owner@example.com"
PASSWORD = "a long production password"
# Every step is a fresh process on a fresh file; none may take longer than this.
STEP_SECONDS = 240

# Several processes start one after another, each bounded; the whole may outlast the default.
pytestmark = [pytest.mark.once, pytest.mark.slow, pytest.mark.timeout(900)]


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
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        status, headers, body = self.request_bytes(method, path, form, extra_headers)
        return status, headers, body.decode("utf-8", "replace")

    def request_bytes(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Host": f"127.0.0.1:{self.port}", "X-Forwarded-Proto": "https"}
        headers.update(extra_headers or {})
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
            body_bytes = response.read()
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie(header)
                for name, morsel in cookie.items():
                    assert morsel["secure"], f"{name} cookie without Secure"
                    self.cookies[name] = morsel.value
            return response.status, dict(response.headers.items()), body_bytes
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

    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"],
            cwd=ROOT,
            env={**env, "MINICRM_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        browser = Browser(port)
        _wait_until_serving(browser, server, log)

        # Plain HTTP is sent to HTTPS; the proxy's HTTPS is trusted. Probes are answered.
        assert _plain_http_status(port, "/sign-in/") == 301
        assert _plain_http_status(port, "/healthz") == 200

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
        _assert_static_files_compressed_and_cached(browser, manifest)

        status, headers, body = browser.request("GET", "/readyz")
        assert status == 200, body
        ready = json.loads(body)
        assert ready["failing"] == []
        assert ready["checks"]["task_queue"]["backend"] == "database"

        # The image's and compose's probe reaches this server as configured.
        for probe in ("/healthz", "/readyz"):
            done = subprocess.run(
                [sys.executable, "deploy/healthcheck.py", probe],
                cwd=ROOT,
                env={**env, "MINICRM_BIND": f"0.0.0.0:{port}"},
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, f"{probe}: {done.stderr}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    _assert_log_is_json(log)


def _assert_static_files_compressed_and_cached(browser: Browser, manifest: dict[str, str]) -> None:
    """WhiteNoise serves the hashed name with a year's immutable caching, gzip to a client that
    takes it (and Brotli when the server has the brotli package), and the file itself to one
    that does not."""
    hashed = f"/static/{manifest['minicrm/css/app.css']}"
    status, headers, plain = browser.request_bytes("GET", hashed)
    assert status == 200
    assert "Content-Encoding" not in headers
    assert "max-age=315360000" in headers["Cache-Control"], headers
    assert "immutable" in headers["Cache-Control"], headers

    status, headers, zipped = browser.request_bytes(
        "GET", hashed, extra_headers={"Accept-Encoding": "gzip"}
    )
    assert (status, headers.get("Content-Encoding")) == (200, "gzip")
    assert gzip.decompress(zipped) == plain
    assert len(zipped) < len(plain)

    if importlib.util.find_spec("brotli") is not None:
        status, headers, _body = browser.request_bytes(
            "GET", hashed, extra_headers={"Accept-Encoding": "br, gzip"}
        )
        assert (status, headers.get("Content-Encoding")) == (200, "br")


def _assert_log_is_json(log: Path) -> None:
    """Every line gunicorn and the application wrote is one JSON object; the access lines name
    their parts and the request's id."""
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    not_json = [line for line in lines if not _is_json_object(line)]
    assert not_json == [], "\n".join(not_json)[-3000:]
    records = [json.loads(line) for line in lines]
    assert {"level", "logger", "message", "time"} <= set(records[0])
    sign_ins = [
        record
        for record in records
        if record["logger"] == "gunicorn.access"
        and (record["method"], record["path"], record["status"]) == ("POST", "/sign-in/", 302)
    ]
    assert len(sign_ins) == 1, records
    assert re.fullmatch(r"[0-9a-f]{32}", sign_ins[0]["request_id"])


def _plain_http_status(port: int, path: str) -> int:
    """The status of a request straight to gunicorn, as a load balancer's probe sends it."""
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        plain.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
        return plain.getresponse().status
    finally:
        plain.close()


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
