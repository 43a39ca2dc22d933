"""The README's run command: web server and worker start together and stop together on Ctrl-C
and when the terminal is closed (SIGHUP), leaving the port free for the next start."""

import json
import os
import pty
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[1]
# bin/dev runs on SQLite and does not depend on the database under test: one pass runs it.
# Several processes start one after another, each bounded; the whole may outlast the default.
pytestmark = [pytest.mark.once, pytest.mark.slow, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
        return response.status, response.read().decode()


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float) -> tuple[int, str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bin/dev exited early with {process.returncode}")
        try:
            return _get(url)
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {seconds} s")


def _dev_env(var_dir: Path, port: int, vendor_port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "MINICRM_TASKS", "MINICRM_WEBHOOK"))
    }
    env.update(
        MINICRM_VAR_DIR=str(var_dir),
        MINICRM_PORT=str(port),
        MINICRM_VENDOR_PORT=str(vendor_port),
        PYTHONUNBUFFERED="1",
    )
    return env


def _start(env: dict[str, str], output: int | IO[str], terminal: bool = False) -> subprocess.Popen:
    # In a session of its own, as in a terminal window; `setsid --ctty` makes the pty on stdin
    # that session's controlling terminal.
    return subprocess.Popen(
        ["setsid", "--ctty", "bin/dev"] if terminal else ["bin/dev"],
        cwd=ROOT,
        env=env,
        stdin=output if terminal else subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=not terminal,
    )


def _assert_all_stopped(process: subprocess.Popen, *ports: int) -> None:
    # Nothing is left behind: no process of the group survives and nobody listens on the port.
    # (A process that just ended stays listed until its parent, or init, reaps it.)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_bin_dev_serves_the_app_with_a_worker_and_stops_on_ctrl_c_and_on_hangup(
    tmp_path: Path,
) -> None:
    port, vendor_port = _free_port(), _free_port()
    env = _dev_env(tmp_path / "var", port, vendor_port)
    log = (tmp_path / "dev.log").open("w")
    process = _start(env, log)
    try:
        status, body = _wait_for(f"http://127.0.0.1:{port}/healthz", process, seconds=240)
        assert status == 200
        # Liveness touches nothing; readiness says the database (SQLite here) answers.
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200, body
        assert json.loads(body)["checks"]["database"]["ok"] is True
        status, body = _get(f"http://127.0.0.1:{port}/sign-in/")
        assert "Create the first admin account" in body  # a fresh database asks for the first admin
        output = (tmp_path / "dev.log").read_text()
        assert "worker" in output
        # The third process: the vendor simulator the webhook channel sends to.
        _wait_for(f"http://127.0.0.1:{vendor_port}/stats", process, seconds=60)

        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    finally:
        _kill(process)
        log.close()
    output = (tmp_path / "dev.log").read_text()
    assert "Traceback" not in output, output[-3000:]
    _assert_all_stopped(process, port, vendor_port)
    # What manage.py run by hand from the checkout uses (README, "Commands"), with the webhook
    # secret made once and kept in var/ (readable by its owner only).
    secret_file = tmp_path / "var" / "webhook_secret"
    secret = secret_file.read_text().strip()
    assert len(secret) == 64
    assert secret_file.stat().st_mode & 0o077 == 0
    assert (tmp_path / "var" / "dev.env").read_text().splitlines()[1:] == [
        "DJANGO_SETTINGS_MODULE=config.settings.base",
        "DJANGO_DEBUG=true",
        f"MINICRM_VAR_DIR={tmp_path / 'var'}",
        f"MINICRM_PUBLIC_URL=http://127.0.0.1:{port}",
        f"MINICRM_WEBHOOK_URL=http://127.0.0.1:{vendor_port}/messages",
        f"MINICRM_WEBHOOK_SECRET={secret}",
    ]

    # Again on the same port, now in a terminal of its own, which is then closed: the kernel
    # hangs up the session (SIGHUP), and later writes to the terminal fail.
    controller, terminal = pty.openpty()
    process = _start(env, terminal, terminal=True)
    os.close(terminal)
    screen = bytearray()
    try:
        deadline = time.monotonic() + 240
        while b"Starting development server" not in screen and time.monotonic() < deadline:
            try:
                screen += os.read(controller, 65536)
            except OSError:
                break
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200, screen.decode()[-3000:]
        os.close(controller)
        controller = -1
        process.wait(timeout=60)
    finally:
        if controller >= 0:
            os.close(controller)
        _kill(process)
    _assert_all_stopped(process, port, vendor_port)
    assert secret_file.read_text().strip() == secret  # the same secret on every start
