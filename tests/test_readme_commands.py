"""The README's commands work when pasted into a terminal of a checkout where `bin/dev` ran.

The checkout is a scratch copy (its own `manage.py` and `var/`, the code and `.venv` linked), so
files the commands write stay out of the real one. `var/dev.env` is written as `bin/dev` writes
it (tests/test_run_command.py checks that), and the web server runs as `bin/dev` runs it.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Each step starts a process or two on a small SQLite file.
STEP_SECONDS = 240

# Several processes start one after another, each bounded; the whole may outlast the default.
pytestmark = [pytest.mark.once, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _terminal_env() -> dict[str, str]:
    """A new terminal's environment: none of the settings this test process runs with."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "MINICRM_", "REDIS_", "PYTEST"))
    }


def readme_commands(section: str) -> str:
    """The bash code blocks of one `## section` of the README, as one script."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return "\n".join(re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.DOTALL))


def _checkout(tmp_path: Path) -> Path:
    """A checkout after `bin/dev`: its own manage.py and var/, with the code and .venv linked."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy2(ROOT / "manage.py", checkout / "manage.py")
    for name in ["config", "minicrm", ".venv"]:
        (checkout / name).symlink_to(ROOT / name)
    var = checkout / "var"
    var.mkdir()
    (var / "dev.env").write_text(
        "# Written by bin/dev: the environment manage.py uses when run from this checkout.\n"
        "DJANGO_SETTINGS_MODULE=config.settings.base\n"
        "DJANGO_DEBUG=true\n"
        f"MINICRM_VAR_DIR={var}\n"
    )
    return checkout


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_SECONDS, check=False
    )


def _manage(checkout: Path, *arguments: str) -> str:
    result = _run([".venv/bin/python", "manage.py", *arguments], checkout, _terminal_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _wait_for(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STEP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the web server exited with {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=5).close()  # noqa: S310 (loopback only)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {STEP_SECONDS} s")


@pytest.mark.slow
def test_the_readme_commands_work_when_pasted_after_bin_dev(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    _manage(checkout, "migrate", "--noinput")  # what bin/dev did before serving
    port = _free_port()
    server = subprocess.Popen(
        [".venv/bin/python", "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=checkout,
        env=_terminal_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", server)
        script = readme_commands("Using the API") + "\n" + readme_commands("Commands")
        assert "createsuperuser --noinput" in script
        assert "import_csv" in script
        # bin/dev serves at 8000; this test's server is on a free port.
        script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = _run(["bash", "-euo", "pipefail", "-c", script], checkout, _terminal_env())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]

    # curl printed who the token belongs to, and the commands changed the database.
    me, _end = json.JSONDecoder().raw_decode(result.stdout, result.stdout.index("{"))
    assert (me["email"], me["role"]) == ("you@example.com", "admin")
    counts = _manage(
        checkout,
        "shell",
        "-c",
        "from minicrm.customers.models import Customer as C; "
        "print(C.objects.count(), C.objects.get(external_id='C-1').first_name)",
    )
    assert counts.splitlines()[-1].split() == ["201", "Ada"]
    assert (checkout / "var" / "customers.csv").is_file()


def test_a_missing_secret_key_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    env = {**_terminal_env(), "MINICRM_VAR_DIR": str(tmp_path)}  # no dev.env there

    result = _run([sys.executable, "manage.py", "create_api_token", "you@example.com"], ROOT, env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "manage.py: Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=true for development).\n"
    )


def test_dev_env_is_ignored_when_the_environment_configures_django(tmp_path: Path) -> None:
    (tmp_path / "dev.env").write_text("DJANGO_DEBUG=true\nMINICRM_TIME_ZONE=Asia/Kolkata\n")
    # (shell first says how many names it imported; the last line is ours)
    show = "from django.conf import settings as s; print(s.DEBUG, s.TIME_ZONE)"
    env = {**_terminal_env(), "MINICRM_VAR_DIR": str(tmp_path)}

    from_file = _run([sys.executable, "manage.py", "shell", "-c", show], ROOT, env)
    configured = _run(
        [sys.executable, "manage.py", "shell", "-c", show],
        ROOT,
        {**env, "DJANGO_SECRET_KEY": "a-production-key-set-by-hand"},
    )

    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.splitlines()[-1] == "True Asia/Kolkata"
    # A server's own configuration never picks up development mode from a stray file.
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.splitlines()[-1] == "False UTC"
