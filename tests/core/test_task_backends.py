"""Background work runs through the configured Tasks backend: RQ on Redis, or the database."""

import os
import subprocess
import sys
from pathlib import Path

import django_rq
import pytest
from django.test import override_settings
from django_tasks import TaskResultStatus

from tests.conftest import service_url

from .sample_tasks import multiply

ROOT = Path(__file__).resolve().parents[2]
RQ_TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}


@pytest.mark.redis
@pytest.mark.once  # the queue is Redis and the worker another process: any database will do
def test_a_task_queued_on_redis_runs_in_a_separate_rq_worker() -> None:
    redis_url = service_url("MINICRM_TEST_REDIS_URL", "Redis")
    with override_settings(TASKS=RQ_TASKS):
        django_rq.get_queue("default").empty()

        result = multiply.enqueue(6, 7)
        assert result.status == TaskResultStatus.READY

        # The worker is another process, as it would be on another machine.
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "REDIS_URL": redis_url,
        }
        env["MINICRM_TASKS_BACKEND"] = "rq"
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "rqworker",
                "--burst",
                "--job-class",
                "django_tasks_rq.Job",
                "default",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )

        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == 42
