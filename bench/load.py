"""Load test of the production server: segment previews, bulk ingestion and the dashboard under
concurrent clients (locust, loopback only, bounded in time).

    .venv/bin/python bench/load.py                     # PostgreSQL bench_segengine, 50 users, 60 s
    .venv/bin/python bench/load.py --database-url sqlite:////tmp/bench_preview.sqlite3
    .venv/bin/python bench/load.py --users 5 --seconds 5 --database-url sqlite:////tmp/small.db

The wrapper prepares a var directory (front-end assets, `collectstatic`), makes the run's admin
account and API token, starts gunicorn with production settings on a free loopback port (see
bench/cold_start.py), waits until every worker answers the heaviest preview fast, then runs
locust in this process: `--users` clients spawned `--spawn-rate` a second, the statistics reset
once all are running and signed in (as locust's --reset-stats; failures before are counted
apart), then `--seconds` of load. It prints requests a
second, p50/p95/p99 and failures per endpoint, stops the server, and deletes the customers (and,
with them, the orders) it created: every one has an external id starting `load-`.

Clients (each waits `--think` seconds, drawn uniformly, between requests, like a person):
- marketers (4 in 5): sign in once, then, round after round, open the dashboard `GET /` and
  preview three rules through `POST /api/v1/segments/preview` (funnel on, as the builder asks);
- integrations (1 in 5): `POST /api/v1/customers/bulk` with 100 new customers, then
  `POST /api/v1/orders/bulk` with one order for each of them.

Limits the app enforces are lifted for the run, since every client shares one address and one
token: the API rate limit per token (MINICRM_API_RATE_LIMIT=0) and the sign-in throttle
(MINICRM_LOGIN_THROTTLE_ATTEMPTS=1000: 50 people signing in from 127.0.0.1 within a second
would otherwise exceed the per-address and per-account counters).

`locust -f bench/load.py --headless -u 50 -r 10 -t 60s --host http://127.0.0.1:PORT` also
works against a server started by hand, given LOAD_TOKEN, BENCH_EMAIL and BENCH_PASSWORD.
"""

# locust patches the standard library for gevent when imported: before anything else.
from locust import FastHttpUser, events, task  # isort: skip

import argparse
import itertools
import json
import os
import random
import re
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gevent
from locust.env import Environment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cold_start import (  # noqa: E402
    BENCH_EMAIL,
    bench_account,
    commit_label,
    gunicorn_config,
    manage,
    preview_rules,
    production_server,
    server_env,
    server_processes,
    workers_warm,
)

BATCH_ROWS = 100
LOAD_PREFIX = "load-"
# The pages need the static files' manifest; collected without compression (whitenoise's
# CompressedManifestStaticFilesStorage takes minutes of CPU to brotli every file, and the load
# test fetches no static file: the names in the pages are the same).
STATIC_CODE = """
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
backend = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
with override_settings(STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": backend}}):
    call_command("collectstatic", interactive=False, verbosity=0)
"""
CLEANUP_CODE = """
from minicrm.customers.models import Customer
deleted, _by_model = Customer.objects.filter(external_id__startswith="load-").delete()
print(deleted)
"""
# Each client's requests have this timeout: a request that takes longer is a failure.
CLIENT_TIMEOUT_SECONDS = 60.0
RUN = os.environ.get("LOAD_RUN") or f"{int(time.time())}"
_client_numbers = itertools.count(1)
# Clients done with on_start (signed in): the measurement starts when all are.
_started_clients = 0


def _think() -> float:
    low, high = (float(part) for part in os.environ.get("LOAD_THINK", "0.5,1.5").split(","))
    return random.uniform(low, high)


def _client_started() -> None:
    global _started_clients
    _started_clients += 1


def _bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['LOAD_TOKEN']}"}


class MarketerUser(FastHttpUser):
    """A marketer in the app: signs in, builds segments (previews), looks at the dashboard."""

    weight = 4
    network_timeout = CLIENT_TIMEOUT_SECONDS
    connection_timeout = CLIENT_TIMEOUT_SECONDS

    def wait_time(self) -> float:
        return _think()

    def on_start(self) -> None:
        number = next(_client_numbers)
        trees = [tree for _name, tree in preview_rules(date.today())]
        self.rules = itertools.cycle(trees[number % len(trees) :] + trees[: number % len(trees)])
        self.steps = itertools.cycle(["dashboard", "preview", "preview", "preview"])
        page = self.client.get("/sign-in/", name="sign in (form)")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text or "")
        form = {
            "csrfmiddlewaretoken": token.group(1) if token else "",
            "email": os.environ.get("BENCH_EMAIL", BENCH_EMAIL),
            "password": os.environ["BENCH_PASSWORD"],
        }
        with self.client.post(
            "/sign-in/",
            data=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
            name="sign in",
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"sign-in answered {response.status_code}")
        _client_started()

    @task
    def work(self) -> None:
        # A fixed round (the dashboard, then three previews), so every run has the same mix.
        if next(self.steps) == "dashboard":
            self.dashboard()
        else:
            self.preview()

    def preview(self) -> None:
        with self.client.post(
            "/api/v1/segments/preview",
            json={"rules": next(self.rules)},
            headers=_bearer(),
            name="POST /api/v1/segments/preview",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or "count" not in (response.text or ""):
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")

    def dashboard(self) -> None:
        with self.client.get(
            "/", allow_redirects=False, name="GET / (dashboard)", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code} (signed out?)")


class IntegrationUser(FastHttpUser):
    """A shop's integration: sends new customers, then their orders, in batches."""

    weight = 1
    network_timeout = CLIENT_TIMEOUT_SECONDS
    connection_timeout = CLIENT_TIMEOUT_SECONDS

    def wait_time(self) -> float:
        return _think()

    def on_start(self) -> None:
        self.number = next(_client_numbers)
        self.batches = itertools.count(1)
        _client_started()

    @task
    def ingest(self) -> None:
        prefix = f"{LOAD_PREFIX}{RUN}-{self.number}-{next(self.batches)}"
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        customers = [
            {
                "external_id": f"{prefix}-{row}",
                "email": f"{prefix}-{row}@load.example.com",
                "first_name": f"Load{row}",
                "city": random.choice(["Pune", "Mumbai", "Delhi", "Chennai"]),
                "country": "India",
                "tags": ["newsletter"] if row % 3 == 0 else [],
                "signed_up_at": now,
            }
            for row in range(BATCH_ROWS)
        ]
        orders = [
            {
                "external_id": f"{prefix}-{row}-o",
                "customer_external_id": f"{prefix}-{row}",
                "amount": f"{random.randint(100, 9000)}.00",
                "status": "completed",
                "ordered_at": now,
            }
            for row in range(BATCH_ROWS)
        ]
        self._bulk("/api/v1/customers/bulk", customers)
        self._bulk("/api/v1/orders/bulk", orders)

    def _bulk(self, path: str, rows: list[dict[str, Any]]) -> None:
        with self.client.post(
            path, json={"rows": rows}, headers=_bearer(), name=f"POST {path}", catch_response=True
        ) as response:
            body = response.json() if response.status_code in (200, 422) else {}
            if response.status_code != 200 or body.get("created") != len(rows):
                response.failure(f"{response.status_code}: {(response.text or '')[:300]}")


# --- The wrapper ----------------------------------------------------------------------------


@dataclass
class LoadResult:
    label: str
    database: str
    workers: int
    gunicorn_config: str | None
    users: int
    seconds: float
    warm_s: float | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ramp_failures: int = 0
    deleted_rows: int = 0


def load_run(port: int, args: argparse.Namespace, result: LoadResult) -> None:
    """locust in this process against the server on `port`: ramp up, reset, measure."""
    env = Environment(
        user_classes=[MarketerUser, IntegrationUser],
        host=f"http://127.0.0.1:{port}",
        events=events,
    )
    ramp_failures = 0
    measuring = False

    def count_ramp_failure(exception: Exception | None, **_kwargs: Any) -> None:
        nonlocal ramp_failures
        if exception is not None and not measuring:
            ramp_failures += 1

    env.events.request.add_listener(count_ramp_failure)
    runner = env.create_local_runner()
    try:
        runner.start(args.users, spawn_rate=args.spawn_rate)
        ramp_deadline = time.monotonic() + args.users / args.spawn_rate + CLIENT_TIMEOUT_SECONDS
        while _started_clients < args.users and time.monotonic() < ramp_deadline:
            gevent.sleep(0.2)
        env.stats.reset_all()  # as locust's --reset-stats: the ramp-up is not measured
        measuring = True
        started = time.monotonic()
        gevent.sleep(args.seconds)
        elapsed = time.monotonic() - started
        runner.quit()
        runner.greenlet.join(timeout=CLIENT_TIMEOUT_SECONDS + 10)
    finally:
        env.events.request.remove_listener(count_ramp_failure)
        if runner.state != "stopped":
            runner.quit()
    result.ramp_failures = ramp_failures
    for entry in sorted(env.stats.entries.values(), key=lambda entry: entry.name):
        if entry.num_requests:  # the sign-ins happened before the reset
            result.rows.append(stats_row(entry.name, entry, elapsed))
    result.rows.append(stats_row("all", env.stats.total, elapsed))
    result.errors = [
        {"name": error.name, "error": str(error.error), "occurrences": error.occurrences}
        for error in env.stats.errors.values()
    ]


def stats_row(name: str, entry: Any, elapsed: float) -> dict[str, Any]:
    return {
        "endpoint": name,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "rps": entry.num_requests / elapsed,
        "p50_ms": entry.get_response_time_percentile(0.5),
        "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
        "max_ms": entry.max_response_time,
    }


def run(args: argparse.Namespace) -> LoadResult:
    app_dir = Path(args.app_dir).resolve()
    config = gunicorn_config(app_dir, args.gunicorn_config)
    with tempfile.TemporaryDirectory(prefix="minicrm-load-") as scratch:
        var_dir = Path(args.var_dir) if args.var_dir else Path(scratch) / "var"
        var_dir.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(16)
        env = server_env(
            database_url=args.database_url,
            var_dir=var_dir,
            BENCH_PASSWORD=password,
            MINICRM_API_RATE_LIMIT="0",
            MINICRM_LOGIN_THROTTLE_ATTEMPTS="1000",
        )
        if not (var_dir / "static" / "staticfiles.json").is_file():
            manage(env, app_dir, "vendor_assets")
            manage(env, app_dir, "shell", "-c", STATIC_CODE)
        if args.migrate:
            manage(env, app_dir, "migrate", "--noinput")
        token = bench_account(env, app_dir)
        os.environ.update(
            LOAD_TOKEN=token, BENCH_PASSWORD=password, LOAD_RUN=RUN, LOAD_THINK=args.think
        )
        result = LoadResult(
            label=args.label or commit_label(app_dir),
            database=args.database_url.partition(":")[0],
            workers=0,
            gunicorn_config=str(config.relative_to(app_dir)) if config else None,
            users=args.users,
            seconds=args.seconds,
        )
        log = Path(args.server_log) if args.server_log else Path(scratch) / "gunicorn.log"
        try:
            with production_server(
                env=env, app_dir=app_dir, workers=args.workers, config=config, log=log
            ) as server:
                result.warm_s, _rounds = workers_warm(
                    server, token, warm_ms=args.warm_ms, settle_seconds=args.settle_seconds
                )
                result.workers = len(server_processes(server)) - 1
                load_run(server.port, args, result)
        finally:
            deleted = manage(env, app_dir, "shell", "-c", CLEANUP_CODE).strip().splitlines()
            result.deleted_rows = int(deleted[-1]) if deleted else 0
    return result


def table(result: LoadResult) -> str:
    lines = [
        f"Load: {result.label}, {result.database}, {result.workers} worker(s), gunicorn config: "
        f"{result.gunicorn_config or 'none'}; {result.users} clients for {result.seconds:.0f} s "
        f"(warm after {result.warm_s if result.warm_s is None else round(result.warm_s, 1)} s)",
        "",
        "| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | failures |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result.rows:
        lines.append(
            f"| {row['endpoint']} | {row['requests']:,} | {row['rps']:.1f} | {row['p50_ms']:.0f} | "
            f"{row['p95_ms']:.0f} | {row['p99_ms']:.0f} | {row['max_ms']:.0f} | "
            f"{row['failures']} |"
        )
    total = result.rows[-1]["failures"] if result.rows else 0
    lines += [
        "",
        f"Errors: {total} (ramp-up: {result.ramp_failures}); "
        f"load rows deleted afterwards: {result.deleted_rows:,}",
    ]
    lines += [f"- {e['occurrences']} x {e['name']}: {e['error'][:300]}" for e in result.errors]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_segengine"
    )
    parser.add_argument("--users", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="clients started a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--think", default="0.5,1.5", help="wait between requests: LOW,HIGH s")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: config's, or 2)")
    parser.add_argument("--warm-ms", type=float, default=1500.0)
    parser.add_argument("--settle-seconds", type=float, default=180.0, help="longest warm-up")
    parser.add_argument("--app-dir", default=str(ROOT), help="the code to run (default: this)")
    parser.add_argument("--label", help="name of the code measured (default: its commit)")
    parser.add_argument("--gunicorn-config", help="a config file, or 'none' (default: project's)")
    parser.add_argument("--var-dir", help="MINICRM_VAR_DIR, reused when its static files exist")
    parser.add_argument("--migrate", action="store_true", help="run migrate first")
    parser.add_argument("--server-log", help="keep gunicorn's output (with its access log) here")
    parser.add_argument("--json", help="write the result here as JSON")
    args = parser.parse_args()

    result = run(args)
    print(table(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(result), indent=2))
    failures = result.rows[-1]["failures"] if result.rows else 1
    sys.exit(1 if failures or result.ramp_failures else 0)


if __name__ == "__main__":
    main()
