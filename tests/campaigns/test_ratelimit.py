"""The global rate limit of a channel holds across worker processes: two real processes on one
database, released at the same moment, together take at least as long as the rate allows."""

import subprocess
import sys
from pathlib import Path

import pytest

from minicrm.campaigns.models import ChannelRate
from minicrm.campaigns.ratelimit import piece_size, rate_wait
from tests.core.worker_process import ROOT, manage, worker_database, worker_env

RATE = 400  # messages per second
PIECE = 20
PIECES_PER_WORKER = 10
WORKERS = 2

# Each process says "ready", waits for "go" on stdin, prints the time, then reserves its pieces
# and prints the wall-clock moment each one went out.
SENDER = f"""
import sys, time
import django
django.setup()
from django.conf import settings
from minicrm.campaigns.ratelimit import rate_wait
settings.MINICRM_CHANNEL_RATES = {{"webhook": {RATE}}}
rate_wait("log", 1)  # connects to the database before the start
print("ready", flush=True)
sys.stdin.readline()
print(time.time(), flush=True)  # before the first reservation
for _ in range({PIECES_PER_WORKER}):
    rate_wait("webhook", {PIECE})
    print(time.time(), flush=True)
"""


@pytest.mark.slow
def test_two_worker_processes_sending_at_once_share_one_rate(tmp_path: Path) -> None:
    with worker_database(tmp_path) as database:
        env = worker_env(tmp_path, database)
        manage(env, "migrate", "--noinput")
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", SENDER],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(WORKERS)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "ready", worker.stderr
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            outputs = [worker.communicate(timeout=60) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(timeout=30)
    assert [worker.returncode for worker in workers] == [0] * WORKERS, outputs
    times = [[float(line) for line in out.split()] for out, _err in outputs]
    assert [len(mine) for mine in times] == [1 + PIECES_PER_WORKER] * WORKERS
    began = min(mine[0] for mine in times)
    first, second = (mine[1:] for mine in times)
    # Both processes were sending at the same time...
    assert min(first) < max(second)
    assert min(second) < max(first)
    # ...yet together no faster than the rate: the first piece may go at once, each later one
    # only after the windows of all those before it, whichever process reserved them.
    total = WORKERS * PIECES_PER_WORKER * PIECE
    assert max(first + second) - began >= (total - PIECE) / RATE - 0.00001  # datetime: 1 µs


@pytest.mark.django_db
def test_an_unlimited_channel_never_waits_and_a_slow_one_sends_a_second_at_a_time(settings):
    settings.MINICRM_CHANNEL_RATES = {"log": 0, "email": 20}
    assert rate_wait("log", 10_000) == 0.0
    assert not ChannelRate.objects.filter(channel="log").exists()
    assert piece_size("email", 500) == 20
    assert piece_size("log", 500) == 500
