"""The environment of a process started under production settings, as the README's production
section sets it, for tests that run `manage.py` or the server in a subprocess."""

import os
import secrets
from pathlib import Path


def production_env(
    var_dir: Path, *, superuser: tuple[str, str] | None = None, hosts: str = "127.0.0.1,localhost"
) -> dict[str, str]:
    """This process's environment without its Django, database and Mini CRM settings, plus the
    production settings on a SQLite file in `var_dir` (and the first admin's email and password
    for `createsuperuser --noinput`, when given)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "MINICRM_", "REDIS_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS=hosts,
        MINICRM_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'minicrm.sqlite3'}",
        PYTHONUNBUFFERED="1",
    )
    if superuser is not None:
        env.update(DJANGO_SUPERUSER_EMAIL=superuser[0], DJANGO_SUPERUSER_PASSWORD=superuser[1])
    return env
