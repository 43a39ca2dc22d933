"""Sign-in throttling that slows an attacker down without locking the real owner out.

Every password attempt first reserves its place in three counters, atomically (the cache's
atomic increment, minicrm.core.cache_counters), so parallel guesses cannot all slip in before
the first failure is recorded:

1. per email and client address: after LOGIN_THROTTLE_ATTEMPTS attempts in the window that pair
   is refused until the window ends (the usual "wrong password five times");
2. per client address over all accounts: LOGIN_THROTTLE_ADDRESS_ATTEMPTS (four times as many by
   default, since an office shares one address), against spraying one password over many emails;
3. per account over all addresses: never a lock. Past LOGIN_THROTTLE_ACCOUNT_ATTEMPTS, password
   checks for the account are spaced by a wait that doubles with each further attempt up to
   LOGIN_THROTTLE_MAX_DELAY_SECONDS (one check per wait, whoever asks), so a botnet gets about one
   guess a minute while the owner waits at most that long, or signs in at once with the
   one-time link by email (minicrm.accounts.sign_in_link), which no password throttle touches.

Refused attempts count too: hammering keeps the window full. A successful sign-in clears the
pair and account counters and gives back its place in the address counter, so colleagues
behind one address never add up to a lock. Unknown emails are counted exactly like known ones,
so throttling never tells which accounts exist.
"""

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from minicrm.core.cache_counters import cache_count


@dataclass(frozen=True)
class LoginAttempt:
    allowed: bool
    retry_after: int = 0  # seconds, for the Retry-After header when refused


def email_key(email: str) -> str:
    # Hashed: an email may hold characters a cache key must not, and keys stay short.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _pair_key(email: str, ip: str | None) -> str:
    return f"login:pair:{email_key(email)}:{ip or 'unknown'}"


def _address_key(ip: str | None) -> str:
    return f"login:address:{ip or 'unknown'}"


def _account_key(email: str) -> str:
    return f"login:account:{email_key(email)}"


def account_delay_seconds(*, attempts: int) -> int:
    """The wait between password checks for an account after `attempts` in the window."""
    over = attempts - settings.LOGIN_THROTTLE_ACCOUNT_ATTEMPTS
    if over <= 0:
        return 0
    return int(min(2 ** min(over, 16), settings.LOGIN_THROTTLE_MAX_DELAY_SECONDS))


def _count(key: str, *, window: int) -> int:
    # Not wrapped in a transaction of ours: `cache_count` makes the row before its own counting
    # transaction and runs that one again if the database picks it as a deadlock victim. Inside
    # one outer transaction, MariaDB's locks from the row's insert and the FOR UPDATE that
    # follows deadlock under parallel first attempts, and no retry can happen inside it.
    return cache_count(key, timeout=window)


def login_attempt_reserve(*, email: str, ip: str | None) -> LoginAttempt:
    """Count one password attempt and say whether its password may be checked."""
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    if _count(_pair_key(email, ip), window=window) > settings.LOGIN_THROTTLE_ATTEMPTS:
        return LoginAttempt(allowed=False, retry_after=window)
    if _count(_address_key(ip), window=window) > settings.LOGIN_THROTTLE_ADDRESS_ATTEMPTS:
        return LoginAttempt(allowed=False, retry_after=window)
    delay = account_delay_seconds(attempts=_count(_account_key(email), window=window))
    # One check per `delay` seconds for the account, whoever asks: `add` lets one request create
    # the key that lives that long. (On the database cache two requests meeting the very moment
    # the old key expires may both pass; a rare second check, never a lock.)
    if delay and not cache.add(f"{_account_key(email)}:wait", 1, timeout=delay):
        return LoginAttempt(allowed=False, retry_after=delay)
    return LoginAttempt(allowed=True)


def login_attempt_succeeded(*, email: str, ip: str | None) -> None:
    """The right password: forget the pair and account failures; the address gets its place back."""
    login_throttle_clear(email=email, ip=ip)
    try:
        # Not atomic on the database cache (read then write): a race loses at most one count.
        cache.decr(_address_key(ip))
    except ValueError:
        # The address's window ended meanwhile: there is nothing to give back.
        return


def login_throttle_clear(*, email: str, ip: str | None) -> None:
    """Forget the pair's and account's attempts (the owner signed in another way)."""
    cache.delete_many([_pair_key(email, ip), _account_key(email), f"{_account_key(email)}:wait"])
