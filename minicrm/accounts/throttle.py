"""Login throttling: repeated failed sign-ins for one email or address lock them out a while."""

from django.conf import settings
from django.core.cache import cache


def _keys(email: str, ip: str | None) -> list[str]:
    return [f"login-fail:email:{email.lower()}", f"login-fail:ip:{ip or 'unknown'}"]


def login_is_throttled(*, email: str, ip: str | None) -> bool:
    limit = settings.LOGIN_THROTTLE_ATTEMPTS
    # The address gets more room than one account: an office may share one address.
    email_key, ip_key = _keys(email, ip)
    return cache.get(email_key, 0) >= limit or cache.get(ip_key, 0) >= limit * 4


def login_failure_record(*, email: str, ip: str | None) -> None:
    for key in _keys(email, ip):
        cache.add(key, 0, timeout=settings.LOGIN_THROTTLE_WINDOW_SECONDS)
        cache.incr(key)


def login_failures_clear(*, email: str, ip: str | None) -> None:
    cache.delete_many(_keys(email, ip))
