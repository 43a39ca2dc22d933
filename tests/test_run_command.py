"""The README's run command: web server and worker start together and stop together on Ctrl-C."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
        return response.status, response.read().decode()


def _wait_for(url: str, process: subprocess.Popen[str], seconds: float) -> tuple[int, str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bin/dev exited early with {process.returncode}")
        try:
            return _get(url)
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {seconds} s")


@pytest.mark.slow
def test_bin_dev_serves_the_app_with_a_worker_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("bin/dev runs on SQLite; this pass is for another database")
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "MINICRM_TASKS"))
    }
    env.update(MINICRM_VAR_DIR=str(tmp_path / "var"), MINICRM_PORT=str(port), PYTHONUNBUFFERED="1")
    log = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        ["bin/dev"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    try:
        status, body = _wait_for(f"http://127.0.0.1:{port}/healthz", process, seconds=180)
        assert status == 200
        assert '"database": "sqlite"' in body
        status, body = _get(f"http://127.0.0.1:{port}/sign-in/")
        assert "Create the first admin account" in body  # a fresh database asks for the first admin
        output = (tmp_path / "dev.log").read_text()
        assert "worker" in output

        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    output = (tmp_path / "dev.log").read_text()
    assert "Traceback" not in output, output[-3000:]
    # Nothing is left behind: no process of the group survives and nobody listens on the port.
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
