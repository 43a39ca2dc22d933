"""An audit event's details said in plain words for the audit page."""

from typing import Any

from django.template.defaultfilters import filesizeformat

# What each details key means to a reader; a key missing here is shown with its own name.
DETAIL_LABELS = {
    "audience_size": "audience",
    "bytes": "size",
    "changed": "changed",
    "channel": "channel",
    "created": "created",
    "deliveries_skipped": "deliveries skipped",
    "file": "file",
    "from": "from",
    "invitation": "invitation",
    "kind": "kind",
    "method": "method",
    "old_name": "was named",
    "reason": "reason",
    "role": "role",
    "scheduled_at": "for",
    "segment": "segment",
    "sent": "sent",
    "sessions_ended": "sessions ended",
    "source": "source",
    "throttled": "throttled",
    "to": "to",
    "tokens_revoked": "tokens revoked",
    "updated": "updated",
}


def _value_text(key: str, value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "bytes" and isinstance(value, int):
        return str(filesizeformat(value))
    if key == "reason" and isinstance(value, str):
        return value.replace("_", " ")  # codes such as "not_invited" read as words
    if key == "invitation":
        return f"#{value}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{name} {item}" for name, item in value.items())
    return str(value)


def audit_details_text(details: dict[str, Any] | None) -> str:
    """`{"changed": ["name"], "old_name": "VIP"}` -> "changed: name · was named: VIP"."""
    if not details:
        return ""
    return " · ".join(
        f"{DETAIL_LABELS.get(key, key.replace('_', ' '))}: {_value_text(key, value)}"
        for key, value in details.items()
    )
