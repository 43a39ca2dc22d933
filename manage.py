#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Run from a checkout where `bin/dev` ran, it uses the environment `bin/dev` recorded in
`var/dev.env` (development mode, and the database and var folder it was started with), so the
README's commands work when pasted. Any of DJANGO_SETTINGS_MODULE, DJANGO_DEBUG or
DJANGO_SECRET_KEY in the environment means it is configured on purpose: the file is then ignored.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The variables that say how this process is meant to run; set by hand, they win over the file.
OWN_CONFIGURATION = ("DJANGO_SETTINGS_MODULE", "DJANGO_DEBUG", "DJANGO_SECRET_KEY")


def development_environment() -> dict[str, str]:
    """The KEY=value lines `bin/dev` wrote to var/dev.env (in MINICRM_VAR_DIR when set)."""
    if any(os.environ.get(name) for name in OWN_CONFIGURATION):
        return {}
    path = Path(os.environ.get("MINICRM_VAR_DIR") or ROOT / "var") / "dev.env"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.partition("=") for line in lines if line.strip() and not line.startswith("#"))
    return {key.strip(): value for key, _sep, value in pairs}


def main() -> None:
    for key, value in development_environment().items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 (loads the settings, which read the environment)
    except ImproperlyConfigured as error:
        # A configuration mistake is the user's to fix: one line, not a traceback.
        sys.exit(f"manage.py: {error}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
