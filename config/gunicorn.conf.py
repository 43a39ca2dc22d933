"""gunicorn's settings for Mini CRM: `gunicorn -c config/gunicorn.conf.py` (README, "Production").

Read from the environment like the Django settings: `MINICRM_BIND` (or `PORT`) for the address,
`WEB_CONCURRENCY` for the number of worker processes, `MINICRM_LOG_FORMAT` and `DJANGO_LOG_LEVEL`
for the log lines. Anything else can be given on the command line or in `GUNICORN_CMD_ARGS`
(e.g. `--threads 4`), which override this file.
"""

import os
import sys
from pathlib import Path

# gunicorn puts its working directory on the import path; this file may be used from elsewhere.
PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from minicrm.core.json_log import logging_config  # noqa: E402


def cpu_count() -> int:
    """CPUs this process may run on (a container's or taskset's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers() -> int:
    """2 x CPUs + 1 synchronous workers. A request mostly waits on the database (or, for a
    preview, reads the snapshot file that every process on the machine maps from the same page
    cache), so two processes per CPU keep the CPUs busy while others wait, and a worker costs
    little memory of its own: about 100 MB of Python plus the snapshot's small per-process delta,
    not a private copy of the customers (docs/scaling.md)."""
    return 2 * cpu_count() + 1


wsgi_app = "config.wsgi:application"
chdir = str(PROJECT_DIR)
bind = [os.environ.get("MINICRM_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or default_workers())
# Each worker imports the application after the fork: no database connection, pool, DuckDB
# handle or thread is ever shared between processes.
preload_app = False
# The workers' heartbeat files on a RAM disk: a disk stalled under an import's writes must not
# make the master think healthy workers hung (gunicorn's own advice for containers).
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# A worker silent for this long is killed and replaced. Well above a statement's budget
# (MINICRM_WEB_STATEMENT_TIMEOUT, 10 s): a segment export streams one bounded query after another
# within one request, and a sync worker does not report in while it streams.
timeout = 120
# On SIGTERM (a deploy, a scale-down) requests in flight get this long to finish.
graceful_timeout = 30
# No control socket: nothing here uses gunicornc, and by default every gunicorn of a user shares
# one socket path in $HOME, which a second server on the machine would take over.
control_socket_disable = True
# Access and error lines through the same logging set-up as the application (plain or JSON),
# one line per request with its method, path, status, bytes, duration and request id.
accesslog = None  # the access logger writes through logconfig_dict's handler, not a file
access_log_format = "%(m)s %(U)s %(s)s %(B)s %(M)sms"
# Production settings (config.wsgi's default) write JSON, others plain, unless MINICRM_LOG_FORMAT
# says; the application's own set-up then applies the same dict in each worker.
_settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.production")
logconfig_dict = logging_config(
    log_format=os.environ.get("MINICRM_LOG_FORMAT")
    or ("json" if _settings_module == "config.settings.production" else "plain"),
    level=os.environ.get("DJANGO_LOG_LEVEL", "INFO"),
)


def post_worker_init(worker: object) -> None:
    """Load the URL conf (and with it every view, the API and its schemas) before the worker
    takes its first request: otherwise that request pays about 2 s of imports. Imported here:
    this file is read by the master before Django is set up."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (the import is the point)
