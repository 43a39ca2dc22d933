"""Cold start and memory of the production server: how long after the server process starts
the first segment preview answers, and how much memory each gunicorn worker holds after
previews, on a database already at scale.

    DATABASE_URL=sqlite:////tmp/bench_preview.sqlite3 .venv/bin/python bench/cold_start.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_segengine \\
        .venv/bin/python bench/cold_start.py --workers 2 --json /tmp/cold_pg.json
    # the code of another commit, unpacked beside (`git archive <commit> | tar -x -C DIR`):
    ... bench/cold_start.py --app-dir DIR --label "before (abc1234)"

Steps: an admin account and an API token are made for the run (`manage.py shell`, outside every
timed section); gunicorn starts with production settings on a free loopback port (plain HTTP:
SSL redirect, HSTS and secure cookies off, as behind a TLS proxy on the same host); from the
moment the process is started it times the port opening, the first answer of `GET /healthz` (a
worker has imported the app), then sends `POST /api/v1/segments/preview` (the DESIGN example
rule, funnel on, as the builder asks) until one answers 200, then `--previews` more over a few
rules, one at a time. Then it keeps one preview of the heaviest rule per worker in flight until
a whole round answers within `--warm-ms` (every worker answers the heavy rule fast: its snapshot
is ready) or `--settle-seconds` pass. Last, the memory of each process from
/proc/<pid>/smaps_rollup: RSS, PSS and private (Private_Clean + Private_Dirty, what the process
alone holds), and the peak of each sampled every 0.25 s over the whole run. The server is
stopped at the end whatever happens; every request has a timeout, so the run is bounded.
"""
# ruff: noqa: S603, S607  (the commands run are this checkout's manage.py and gunicorn, and git)

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rules import rules_under_test  # noqa: E402
from tests.production_env import production_env  # noqa: E402

BENCH_EMAIL = "bench-scale@example.com"
BENCH_TOKEN_NAME = "bench scale"  # noqa: S105 (the token's label, not a secret)
PREVIEW_PATH = "/api/v1/segments/preview"
PREVIEW_RULE_NUMBERS = (6, 8, 7, 10)
# Bounds of single steps, so that no run can hang.
REQUEST_TIMEOUT_SECONDS = 60.0
MANAGE_TIMEOUT_SECONDS = 600.0
STOP_GRACE_SECONDS = 15.0
SAMPLE_EVERY_SECONDS = 0.25
TIMED_OUT = -1  # the status of a request without an answer within REQUEST_TIMEOUT_SECONDS

# The account and token of the run: made (or reset) by the app's own code, printed on the last
# line. Earlier bench tokens are deleted so runs do not pile them up.
SETUP_CODE = """
import os
from minicrm.accounts.models import ApiToken, Role, User
from minicrm.accounts.services import api_token_create
email, password = os.environ["BENCH_EMAIL"], os.environ["BENCH_PASSWORD"]
user = User.objects.filter(email=email).first()
if user is None:
    user = User.objects.create_superuser(email, password)
else:
    user.set_password(password)
    user.is_active = True
    user.role = Role.ADMIN
    user.save()
ApiToken.objects.filter(user=user, name=os.environ["BENCH_TOKEN_NAME"]).delete()
print(api_token_create(user=user, name=os.environ["BENCH_TOKEN_NAME"])[1])
"""


def preview_rules(today: date) -> list[tuple[str, dict[str, Any]]]:
    """Rules a marketer builds (bench/rules.py's numbers 6, 8, 7 and 10): the DESIGN example
    first, the heaviest (nine conditions in nested groups) last; relative to `today` like the
    builder's."""
    by_number = {
        int(name.split()[0]): (name.split(" ", 1)[1], rules)
        for name, rules in rules_under_test(today)
    }
    return [by_number[number] for number in PREVIEW_RULE_NUMBERS]


# --- The server -----------------------------------------------------------------------------


def server_env(*, database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The production environment (tests/production_env.py) on `database_url`, over plain
    loopback HTTP: no SSL redirect, no HSTS, no proxy header, cookies without Secure."""
    env = production_env(var_dir)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="0",
        DJANGO_BEHIND_PROXY="false",
        DJANGO_SECURE_COOKIES="false",
        BENCH_EMAIL=BENCH_EMAIL,
        BENCH_TOKEN_NAME=BENCH_TOKEN_NAME,
        **extra,
    )
    return env


def manage(env: dict[str, str], app_dir: Path, *arguments: str) -> str:
    """`manage.py arguments...` in `app_dir`; its stdout, or SystemExit with its error."""
    finished = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=MANAGE_TIMEOUT_SECONDS,
        check=False,
    )
    if finished.returncode != 0:
        raise SystemExit(f"manage.py {arguments[0]} failed:\n{finished.stderr[-3000:]}")
    return finished.stdout


def bench_account(env: dict[str, str], app_dir: Path) -> str:
    """Make the run's admin account (password BENCH_PASSWORD) and return a fresh API token."""
    return manage(env, app_dir, "shell", "-c", SETUP_CODE).strip().splitlines()[-1]


def gunicorn_config(app_dir: Path, chosen: str | None) -> Path | None:
    """The gunicorn config the deployment uses: `chosen` ("none" for none), or the project's."""
    if chosen == "none":
        return None
    if chosen:
        return Path(chosen).resolve()
    for candidate in (app_dir / "config" / "gunicorn.conf.py", app_dir / "gunicorn.conf.py"):
        if candidate.is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    started: float  # time.perf_counter() just before the process was started
    log: Path


@contextmanager
def production_server(
    *, env: dict[str, str], app_dir: Path, workers: int | None, config: Path | None, log: Path
) -> Iterator[Server]:
    """gunicorn on a free loopback port, in its own session, with `workers` workers (None: as
    many as `config` says, or 2 without one); stopped (TERM, then KILL of the whole group)
    when the block ends, however it ends."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    if config is not None:
        command += ["--config", str(config)]
    if workers is not None or config is None:
        command += ["--workers", str(workers or 2)]
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=app_dir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Server(port=port, process=process, started=started, log=log)
    finally:
        server_stop(process)


def server_stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=STOP_GRACE_SECONDS)


def server_log_tail(server: Server) -> str:
    return server.log.read_text(errors="replace")[-3000:]


# --- Requests -------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection refused or reset); TIMED_OUT
    seconds: float
    body: bytes = b""


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Answer:
    """One request on a new connection (so parallel ones reach different workers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        content = response.read()
        return Answer(response.status, time.perf_counter() - started, content)
    except TimeoutError:
        return Answer(TIMED_OUT, time.perf_counter() - started)
    except (ConnectionError, http.client.RemoteDisconnected):
        return Answer(0, time.perf_counter() - started)
    finally:
        connection.close()


def status_name(status: int) -> str:
    if status == TIMED_OUT:
        return f"no answer in {REQUEST_TIMEOUT_SECONDS:.0f} s"
    return str(status) if status else "refused or reset"


def preview_request(port: int, token: str, rules: dict[str, Any]) -> Answer:
    return http_request(
        port,
        "POST",
        PREVIEW_PATH,
        body=json.dumps({"rules": rules}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


# --- Memory ---------------------------------------------------------------------------------


def smaps_rollup(pid: int) -> dict[str, float]:
    """RSS, PSS and private (Private_Clean + Private_Dirty) of a process, in MB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            values[key] = int(parts[0])
    return {
        "rss_mb": values["Rss"] / 1024,
        "pss_mb": values["Pss"] / 1024,
        "private_mb": (values["Private_Clean"] + values["Private_Dirty"]) / 1024,
    }


def child_pids(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return sorted(children)


def server_processes(server: Server) -> dict[int, str]:
    """The gunicorn master and its workers, by pid."""
    processes = {server.process.pid: "master"}
    for number, pid in enumerate(child_pids(server.process.pid), start=1):
        processes[pid] = f"worker {number}"
    return processes


class MemorySampler:
    """Samples every server process's memory in a thread; keeps each one's peak."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peaks: dict[int, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> dict[int, dict[str, float]]:
        found = {}
        for pid in server_processes(self.server):
            try:
                found[pid] = smaps_rollup(pid)
            except (OSError, KeyError):  # a worker that ended or is being replaced
                continue
            peak = self.peaks.setdefault(pid, dict.fromkeys(found[pid], 0.0))
            for key, value in found[pid].items():
                peak[key] = max(peak[key], value)
        return found

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_SECONDS):
            self.sample()


# --- The measurement ------------------------------------------------------------------------


@dataclass
class ColdStart:
    label: str
    database: str
    gunicorn_config: str | None
    workers: int = 0
    customers: int = 0
    load_average: float = 0.0  # the machine's, over the minute before the start
    listening_s: float | None = None
    healthz_s: float | None = None
    first_preview_s: float | None = None
    first_preview_ms: float | None = None
    refused_before_first: dict[str, int] = field(default_factory=dict)
    errors_after_first: dict[str, int] = field(default_factory=dict)
    previews: list[dict[str, Any]] = field(default_factory=list)
    warm_s: float | None = None
    warm_rounds: int = 0
    counts_consistent: bool = True
    memory: list[dict[str, Any]] = field(default_factory=list)


def first_preview(server: Server, token: str, rules: dict[str, Any], result: ColdStart) -> int:
    """Preview until one answers 200 (returning its count); times from the process start."""
    deadline = time.monotonic() + MANAGE_TIMEOUT_SECONDS
    while result.listening_s is None and time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"gunicorn exited early:\n{server_log_tail(server)}")
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except OSError:
            time.sleep(0.02)
        else:
            result.listening_s = time.perf_counter() - server.started
    # A worker has imported the application when it answers the health probe.
    while result.healthz_s is None and time.monotonic() < deadline:
        if http_request(server.port, "GET", "/healthz").status == 200:
            result.healthz_s = time.perf_counter() - server.started
        else:
            time.sleep(0.02)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"gunicorn exited early:\n{server_log_tail(server)}")
        answer = preview_request(server.port, token, rules)
        if answer.status == 200:
            result.first_preview_s = time.perf_counter() - server.started
            result.first_preview_ms = answer.seconds * 1000
            found = json.loads(answer.body)
            result.customers = found["total_customers"]
            return int(found["count"])
        key = status_name(answer.status)
        result.refused_before_first[key] = result.refused_before_first.get(key, 0) + 1
        if not answer.status:
            time.sleep(0.05)
    raise SystemExit(f"no preview answered within {MANAGE_TIMEOUT_SECONDS:.0f} s")


def workers_warm(
    server: Server,
    token: str,
    *,
    warm_ms: float,
    settle_seconds: float,
    answers: list[Answer] | None = None,
) -> tuple[float | None, int]:
    """Seconds after the process start at which every worker answers the heaviest preview within
    `warm_ms` (None: not within `settle_seconds`), and the rounds it took. A round keeps one
    request per worker in flight; sync workers take one at a time, so it reaches each of them."""
    heavy = preview_rules(date.today())[-1][1]
    deadline = time.monotonic() + settle_seconds
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        workers = max(1, len(child_pids(server.process.pid)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(
                pool.map(lambda _n: preview_request(server.port, token, heavy), range(workers))
            )
        if answers is not None:
            answers.extend(found)
        if all(answer.status == 200 and answer.seconds * 1000 <= warm_ms for answer in found):
            return time.perf_counter() - server.started, rounds
        if any(answer.status == 0 for answer in found):
            time.sleep(0.05)  # not listening yet
    return None, rounds


def measure(
    server: Server,
    token: str,
    result: ColdStart,
    *,
    previews: int,
    warm_ms: float,
    settle_seconds: float,
) -> None:
    rules = preview_rules(date.today())
    counts: dict[str, set[int]] = {name: set() for name, _rules in rules}
    counts[rules[0][0]].add(first_preview(server, token, rules[0][1], result))

    def record(name: str, answer: Answer) -> None:
        if answer.status == 200:
            counts[name].add(int(json.loads(answer.body)["count"]))
        else:
            key = status_name(answer.status)
            result.errors_after_first[key] = result.errors_after_first.get(key, 0) + 1

    for number in range(previews):
        name, tree = rules[(number + 1) % len(rules)]
        at = time.perf_counter() - server.started
        answer = preview_request(server.port, token, tree)
        record(name, answer)
        result.previews.append(
            {"rule": name, "at_s": at, "ms": answer.seconds * 1000, "status": answer.status}
        )
    answers: list[Answer] = []
    result.warm_s, result.warm_rounds = workers_warm(
        server, token, warm_ms=warm_ms, settle_seconds=settle_seconds, answers=answers
    )
    for answer in answers:
        record(rules[-1][0], answer)
    result.counts_consistent = all(len(found) <= 1 for found in counts.values())


def run(args: argparse.Namespace) -> ColdStart:
    app_dir = Path(args.app_dir).resolve()
    config = gunicorn_config(app_dir, args.gunicorn_config)
    with tempfile.TemporaryDirectory(prefix="minicrm-cold-") as scratch:
        var_dir = Path(args.var_dir) if args.var_dir else Path(scratch) / "var"
        var_dir.mkdir(parents=True, exist_ok=True)
        env = server_env(
            database_url=args.database_url,
            var_dir=var_dir,
            BENCH_PASSWORD=secrets.token_urlsafe(16),
        )
        if args.migrate:
            manage(env, app_dir, "migrate", "--noinput")
        token = bench_account(env, app_dir)
        result = ColdStart(
            label=args.label or commit_label(app_dir),
            database=args.database_url.partition(":")[0],
            gunicorn_config=str(config.relative_to(app_dir)) if config else None,
        )
        log = Path(args.server_log) if args.server_log else Path(scratch) / "gunicorn.log"
        result.load_average = os.getloadavg()[0]
        with production_server(
            env=env, app_dir=app_dir, workers=args.workers, config=config, log=log
        ) as server:
            with MemorySampler(server) as sampler:
                measure(
                    server,
                    token,
                    result,
                    previews=args.previews,
                    warm_ms=args.warm_ms,
                    settle_seconds=args.settle_seconds,
                )
                time.sleep(1)  # let a load that just finished free its temporaries
                final = sampler.sample()
                processes = server_processes(server)
                result.workers = len(processes) - 1
            for pid, role in processes.items():
                if pid in final:
                    peak = sampler.peaks[pid]
                    result.memory.append(
                        {
                            "process": role,
                            **final[pid],
                            "peak_rss_mb": peak["rss_mb"],
                            "peak_private_mb": peak["private_mb"],
                        }
                    )
    return result


def commit_label(app_dir: Path) -> str:
    finished = subprocess.run(
        ["git", "-C", str(app_dir), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return finished.stdout.strip() or app_dir.name


def table(result: ColdStart) -> str:
    lines = [
        f"Cold start: {result.label}, {result.database}, {result.customers:,} customers, "
        f"{result.workers} worker(s), gunicorn config: {result.gunicorn_config or 'none'}, "
        f"load average {result.load_average:.1f} on {os.cpu_count()} CPUs",
        "",
        "| step | s after start | latency ms |",
        "| --- | ---: | ---: |",
        f"| port open (gunicorn master listening) | {_seconds(result.listening_s)} | |",
        f"| a worker answers GET /healthz | {_seconds(result.healthz_s)} | |",
        f"| first preview (200) | {_seconds(result.first_preview_s)} | "
        f"{_ms(result.first_preview_ms)} |",
    ]
    for number, preview in enumerate(result.previews, start=2):
        status = "" if preview["status"] == 200 else f" (answered {preview['status']})"
        lines.append(
            f"| preview {number}: {preview['rule']}{status} | {preview['at_s']:.2f} | "
            f"{preview['ms']:.0f} |"
        )
    latencies = [preview["ms"] for preview in result.previews]
    if latencies:
        lines.append(
            f"| previews 2-{len(latencies) + 1}: median | | {statistics.median(latencies):.0f} |"
        )
    lines.append(f"| every worker warm (heavy rule fast) | {_seconds(result.warm_s)} | |")
    lines += [
        "",
        f"Answers before the first preview: {result.refused_before_first or 'none'}; "
        f"errors after it: {result.errors_after_first or 'none'}; "
        f"rounds to warm: {result.warm_rounds}; same count for each rule every time: "
        f"{'yes' if result.counts_consistent else 'NO'}",
        "",
        "| process | RSS MB | PSS MB | private MB | peak RSS MB | peak private MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result.memory:
        lines.append(
            f"| {row['process']} | {row['rss_mb']:.0f} | {row['pss_mb']:.0f} | "
            f"{row['private_mb']:.0f} | {row['peak_rss_mb']:.0f} | {row['peak_private_mb']:.0f} |"
        )
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "sqlite:////tmp/bench_preview.sqlite3"),
        help="default: $DATABASE_URL, else the preview benchmark's SQLite file",
    )
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: config's, or 2)")
    parser.add_argument("--previews", type=int, default=8, help="previews after the first")
    parser.add_argument(
        "--warm-ms", type=float, default=1500.0, help="'fast' for the heavy rule (SQL: >2 s)"
    )
    parser.add_argument("--settle-seconds", type=float, default=120.0, help="longest warm-up")
    parser.add_argument("--app-dir", default=str(ROOT), help="the code to run (default: this)")
    parser.add_argument("--label", help="name of the code measured (default: its commit)")
    parser.add_argument("--gunicorn-config", help="a config file, or 'none' (default: project's)")
    parser.add_argument("--var-dir", help="MINICRM_VAR_DIR (default: a temporary directory)")
    parser.add_argument("--migrate", action="store_true", help="run migrate first")
    parser.add_argument("--server-log", help="keep gunicorn's output in this file")
    parser.add_argument("--json", help="write the result here as JSON")
    args = parser.parse_args()

    result = run(args)
    print(table(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(result), indent=2))


if __name__ == "__main__":
    main()
