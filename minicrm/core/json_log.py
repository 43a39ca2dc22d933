"""How log records are written: `plain` lines for people at a terminal, or one JSON object a line
(`json`, python-json-logger) for a log collector. One LOGGING dict serves Django and gunicorn
(config/gunicorn.conf.py), so the server's access and error lines come out in the same shape as
the application's records, request id included (minicrm.core.request_id)."""

import logging
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("plain", "json")
# Paths whose next segment is a secret (a one-time sign-in link, an invitation, an unsubscribe
# link): whoever reads the logs must not be able to use them.
SECRET_PATH_PREFIXES = ("/u/", "/invitations/", "/sign-in/link/")
REDACTED = "[redacted]"


def path_redacted(path: str, prefixes: Sequence[str] = SECRET_PATH_PREFIXES) -> str:
    """`path` with the segment after a secret-bearing prefix replaced by REDACTED."""
    for prefix in prefixes:
        if path.startswith(prefix):
            _secret, slash, rest = path[len(prefix) :].partition("/")
            return f"{prefix}{REDACTED}{slash}{rest}"
    return path


class SecretPathFilter(logging.Filter):
    """Redacts secret path segments in every record's arguments (gunicorn's access line, Django's
    "Not Found: /u/<token>/" warnings) before any formatter writes them."""

    def __init__(self, prefixes: Sequence[str] = SECRET_PATH_PREFIXES) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, MutableMapping):
            # In place: gunicorn's atoms are a dict subclass that answers "-" for missing keys.
            for key, value in list(args.items()):
                args[key] = self._clean(value)
        elif isinstance(args, Mapping):
            record.args = {key: self._clean(value) for key, value in args.items()}
        elif isinstance(args, tuple):
            record.args = tuple(self._clean(value) for value in args)
        return True

    def _clean(self, value: Any) -> Any:
        return path_redacted(value, self.prefixes) if isinstance(value, str) else value


class JsonLogFormatter(JsonFormatter):
    """python-json-logger's formatter; gunicorn's access records also get their parts as keys
    (gunicorn hands them over as the record's arguments), so no one parses the message."""

    def add_fields(
        self, log_data: dict[str, Any], record: Any, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        request: Any = getattr(record, "request", None)
        if "request" in log_data and request is not None and hasattr(request, "path"):
            # Django's request records carry the request object: its method and path only.
            log_data["request"] = f"{request.method} {path_redacted(request.path)}"
        atoms = record.args
        if record.name != "gunicorn.access" or not isinstance(atoms, Mapping):
            return
        # The path without its query string: queries are the callers' data, not the log's.
        log_data.update(
            method=atoms["m"],
            path=atoms["U"],
            status=int(atoms["s"]),
            bytes=atoms["B"],
            duration_ms=atoms["M"],
            remote_addr=atoms["h"],
            forwarded_for=atoms["{x-forwarded-for}i"],
            user_agent=atoms["a"],
            request_id=atoms["{x-request-id}o"],
        )


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` dict for `log_format` (plain or json) at `level`."""
    formatters: dict[str, dict[str, Any]] = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "minicrm.core.json_log.JsonLogFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    }
    if log_format not in formatters:
        raise ValueError(
            f"The log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
        )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "minicrm.core.request_id.RequestIdFilter"},
            "secret_paths": {"()": "minicrm.core.json_log.SecretPathFilter"},
        },
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id", "secret_paths"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # gunicorn's own loggers write through the same handler (they are named here so that
            # gunicorn's and Django's set-up, whichever runs last, leave them the same).
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }
