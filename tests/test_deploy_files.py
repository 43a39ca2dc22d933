"""The deploy files hold together without Docker (none on the test machines): the compose file
parses with the services, health checks and start order the README promises, its commands and
options exist, the Dockerfile's stages and files are real, the build context keeps what the build
needs, and gunicorn's settings file reads the environment as documented."""

import fnmatch
import os
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"

pytestmark = pytest.mark.once


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def test_compose_has_the_services_with_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert set(services) == {"migrate", "web", "worker", "vendor", "postgres", "redis"}
    assert services["web"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "deploy/healthcheck.py",
        "/readyz",
    ]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "create_connection" in " ".join(services["vendor"]["healthcheck"]["test"])
    # The one-off and the worker answer no HTTP: the image's /healthz check is switched off.
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert services["worker"]["healthcheck"] == {"disable": True}


def test_compose_starts_things_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    healthy = {"condition": "service_healthy"}
    migrated = {"condition": "service_completed_successfully"}

    assert services["migrate"]["depends_on"] == {"postgres": healthy}
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": migrated,
            "postgres": healthy,
            "redis": healthy,
        }, name
    assert services["vendor"]["depends_on"] == {"web": healthy}


def test_compose_app_services_share_uploads_and_the_snapshot(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("migrate", "web", "worker", "vendor"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert "media:/app/var/media" in services[name]["volumes"]
        assert "snapshot:/app/var/snapshot" in services[name]["volumes"]
    assert set(compose["volumes"]) == {"media", "snapshot", "postgres", "redis"}


def test_compose_secrets_have_no_defaults(compose: dict[str, Any]) -> None:
    environment = compose["services"]["web"]["environment"]
    text = (DEPLOY / "compose.yaml").read_text()

    for name in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "MINICRM_WEBHOOK_SECRET"):
        assert re.search(r"\$\{" + name + r":\?", text), name
    assert environment["DATABASE_URL"].startswith("postgres://minicrm:${POSTGRES_PASSWORD:?")
    assert environment["REDIS_URL"] == "redis://redis:6379/0"


# The compose file's MINICRM_TASKS_BACKEND (db_worker checks its backend when parsing options).
@override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})
def test_compose_commands_exist_with_their_options(compose: dict[str, Any]) -> None:
    assert compose["services"]["web"]["environment"]["MINICRM_TASKS_BACKEND"] == "database"
    services = compose["services"]
    commands = get_commands()
    calls = [
        services["worker"]["command"],
        services["vendor"]["command"],
        *(part.strip().split() for part in services["migrate"]["command"][2].split("&&")),
    ]

    for call in calls:
        assert call[:2] == ["python", "manage.py"], call
        name, arguments = call[2], call[3:]
        assert name in commands, name
        # The command's own parser accepts the options as written (it exits on an unknown one).
        load_command_class(commands[name], name).create_parser("manage.py", name).parse_args(
            arguments
        )
    assert services["web"]["command"] == ["gunicorn", "-c", "config/gunicorn.conf.py"]


def test_dockerfile_stages_and_files_are_real(dockerfile: str) -> None:
    stages = re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, flags=re.MULTILINE)
    assert stages == ["uv", "python-packages", "node-packages", "static", "runtime"]
    for source in re.findall(r"--from=(\S+)", dockerfile):
        assert source in stages, source
    for path in ("pyproject.toml", "uv.lock", "package.json", "package-lock.json"):
        assert (ROOT / path).is_file(), path
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "npm ci --omit=dev" in dockerfile
    assert "manage.py vendor_assets" in dockerfile
    assert "manage.py collectstatic --noinput" in dockerfile


def test_dockerfile_runs_gunicorn_as_a_user_with_a_health_check(dockerfile: str) -> None:
    runtime = dockerfile.split("AS runtime", 1)[1]
    user = re.search(r"^USER (\S+)$", runtime, flags=re.MULTILINE)

    assert user is not None
    assert user.group(1) not in {"root", "0"}
    assert runtime.index("USER ") < runtime.index("CMD [")
    assert 'CMD ["python", "deploy/healthcheck.py", "/healthz"]' in runtime
    assert (DEPLOY / "healthcheck.py").is_file()
    assert runtime.rstrip().endswith('CMD ["gunicorn", "-c", "config/gunicorn.conf.py"]')
    assert (ROOT / "config" / "gunicorn.conf.py").is_file()


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for the simple patterns used here: a pattern matches the path or a parent."""
    parts = path.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if any(
            fnmatch.fnmatch(candidate, pattern) or fnmatch.fnmatch(part, bare)
            for candidate in candidates
            for part in candidate.split("/")[-1:]
        ):
            return True
    return False


def test_build_context_keeps_what_the_build_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    for path in (".venv", "node_modules", "var", ".git", "minicrm/web/__pycache__", "x.sqlite3"):
        assert _ignored(path, patterns), path
    needed = [
        "manage.py",
        "pyproject.toml",
        "uv.lock",
        "package.json",
        "package-lock.json",
        "config/gunicorn.conf.py",
        "config/settings/production.py",
        "deploy/healthcheck.py",
        "minicrm/web/templates/base.html",
        "minicrm/web/static/minicrm/css/app.css",
    ]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not _ignored(path, patterns), path


def _gunicorn_settings(monkeypatch: pytest.MonkeyPatch, **environment: str) -> dict[str, Any]:
    for name in ("MINICRM_BIND", "PORT", "WEB_CONCURRENCY", "MINICRM_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))


def test_gunicorn_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = _gunicorn_settings(monkeypatch)

    assert conf["bind"] == ["0.0.0.0:8000"]
    assert conf["workers"] == 2 * len(os.sched_getaffinity(0)) + 1
    assert conf["wsgi_app"] == "config.wsgi:application"
    assert conf["preload_app"] is False
    assert conf["worker_tmp_dir"] == "/dev/shm"
    assert conf["graceful_timeout"] == 30
    # Production settings are config.wsgi's default: JSON lines.
    assert conf["logconfig_dict"]["handlers"]["console"]["formatter"] == "json"
    assert set(conf["logconfig_dict"]["loggers"]) >= {"gunicorn.access", "gunicorn.error"}


def test_gunicorn_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    by_port = _gunicorn_settings(monkeypatch, PORT="9001", WEB_CONCURRENCY="3")
    by_bind = _gunicorn_settings(
        monkeypatch,
        MINICRM_BIND="127.0.0.1:9002",
        PORT="9001",
        DJANGO_SETTINGS_MODULE="config.settings.base",
    )

    assert (by_port["bind"], by_port["workers"]) == (["0.0.0.0:9001"], 3)
    assert by_bind["bind"] == ["127.0.0.1:9002"]
    # Development settings log plain lines, unless MINICRM_LOG_FORMAT says otherwise.
    assert by_bind["logconfig_dict"]["handlers"]["console"]["formatter"] == "plain"
