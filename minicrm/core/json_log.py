"""How log records are written: `plain` lines for people at a terminal, or one JSON object a line
(`json`, python-json-logger) for a log collector. One LOGGING dict serves Django and gunicorn
(config/gunicorn.conf.py), so the server's access and error lines come out in the same shape as
the application's records, request id included (minicrm.core.request_id)."""

from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("plain", "json")


class JsonLogFormatter(JsonFormatter):
    """python-json-logger's formatter; gunicorn's access records also get their parts as keys
    (gunicorn hands them over as the record's arguments), so no one parses the message."""

    def add_fields(
        self, log_data: dict[str, Any], record: Any, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
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
        "filters": {"request_id": {"()": "minicrm.core.request_id.RequestIdFilter"}},
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id"],
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
