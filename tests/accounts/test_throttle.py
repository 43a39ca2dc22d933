"""Sign-in throttling: parallel guesses stop at the limit, attackers never lock the owner out,
the proxy header counts only behind our proxy, and the sign-in link always gets the owner in."""

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth.backends import ModelBackend
from django.core import mail
from django.core.cache import cache, caches
from django.core.management import call_command
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import reverse

from minicrm.accounts.client_address import client_ip
from minicrm.accounts.models import AuditEvent, User
from tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory
from tests.sqlite_file_load import sqlite_file_load

SIGN_IN = "/sign-in/"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _mail_after_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links are mailed after the request's transaction commits, which a test's never does."""
    # Every enqueue goes through minicrm.core.tasks, which asks django.db.transaction.
    monkeypatch.setattr("django.db.transaction.on_commit", lambda callback: callback())


def page_text(response: Any) -> str:
    """The page without what changes on every answer (CSRF token, CSP nonce)."""
    html = response.content.decode()
    return re.sub(r'(content|value|nonce)="[A-Za-z0-9+/=]{20,}"', "", html)


WRONG = "wrong-guess-1"


def guess(email: str, *, address: str, password: str = WRONG, **headers: str) -> Any:
    client = Client(REMOTE_ADDR=address, **headers)
    return client.post(SIGN_IN, {"email": email, "password": password})


class CheckCounter:
    """Counts password checks (calls of the model backend), from any thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        original = ModelBackend.authenticate

        def counting(backend: ModelBackend, request: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.count += 1
            return original(backend, request, *args, **kwargs)

        monkeypatch.setattr(ModelBackend, "authenticate", counting)


def redis_available() -> bool:
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False
    return True


@pytest.fixture(params=["database", "redis"])
def shared_cache(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """The production cache backends (the tests' default is the local-memory cache)."""
    if connection.vendor == "sqlite":
        pytest.skip("the in-memory SQLite database cannot take parallel writers; see the file test")
    if request.param == "database":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "test_throttle_cache",
            }
        }
        call_command("createcachetable", verbosity=0)
    else:
        if not redis_available():
            pytest.skip("no Redis at 127.0.0.1:6379")
        # Its own prefix, and only its own keys removed at the end (never FLUSHDB): other test
        # runs may share this Redis database at the same time.
        prefix = f"throttle-test-{uuid.uuid4().hex}"
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/14",
                "KEY_PREFIX": prefix,
            }
        }
        yield request.param
        client = redis.Redis(host="127.0.0.1", port=6379, db=14)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        return
    caches["default"].clear()
    yield request.param
    caches["default"].clear()


@pytest.mark.django_db(transaction=True)
@pytest.mark.server_database  # the SQLite pass runs the file-database test below instead
def test_forty_parallel_wrong_guesses_check_at_most_the_limit(
    shared_cache: str, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    AdminFactory()  # the sign-in page exists once an admin does
    owner = UserFactory(email="owner@example.com")
    checks = CheckCounter(monkeypatch)
    start = threading.Barrier(40, timeout=30)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def attacker() -> None:
        try:
            start.wait()
            statuses.append(guess(owner.email, address="203.0.113.7").status_code)
        except BaseException as error:  # noqa: BLE001 (reported by the assertion below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=attacker) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(statuses) == 40
    assert checks.count <= settings.LOGIN_THROTTLE_ATTEMPTS
    assert statuses.count(429) >= 40 - settings.LOGIN_THROTTLE_ATTEMPTS
    assert set(statuses) <= {200, 429}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", ["database", "redis"])
def test_forty_parallel_wrong_guesses_on_a_sqlite_file(tmp_path: Path, backend: str) -> None:
    if backend == "redis" and not redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    result = sqlite_file_load(
        "tests.accounts.throttle_load", "40", backend, var_dir=tmp_path, timeout=230
    )

    assert result["checks"] == 5
    assert result["statuses"] == [200] * 5 + [429] * 35


def test_throttled_answer_is_429_with_retry_after_and_no_password_check(
    monkeypatch: pytest.MonkeyPatch, admin: User
) -> None:
    for _ in range(5):
        assert guess(admin.email, address="198.51.100.1").status_code == 200
    checks = CheckCounter(monkeypatch)

    response = guess(admin.email, address="198.51.100.1", password=DEFAULT_PASSWORD)

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "Too many failed attempts" in response.content.decode()
    assert checks.count == 0
    failed = AuditEvent.objects.filter(action="sign_in_failed").order_by("-id").first()
    assert failed is not None
    assert failed.details["throttled"] is True


def test_owner_signs_in_from_another_address_while_the_attacker_is_throttled(admin: User) -> None:
    for _ in range(6):
        guess(admin.email, address="198.51.100.66")
    assert guess(admin.email, address="198.51.100.66").status_code == 429

    owner = Client(REMOTE_ADDR="192.0.2.10")
    response = owner.post(SIGN_IN, {"email": admin.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert owner.session["_auth_user_id"] == str(admin.pk)


def test_many_addresses_slow_the_account_down_without_locking_it(
    settings: Any, monkeypatch: pytest.MonkeyPatch, admin: User
) -> None:
    limit = settings.LOGIN_THROTTLE_ACCOUNT_ATTEMPTS
    for index in range(limit):
        assert guess(admin.email, address=f"10.1.0.{index + 1}").status_code == 200
    # Past the account's limit: one check, then a wait before the next, whoever asks.
    assert guess(admin.email, address="10.1.1.1").status_code == 200
    refused = guess(admin.email, address="10.1.1.2", password=DEFAULT_PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= settings.LOGIN_THROTTLE_MAX_DELAY_SECONDS

    # The wait is short and capped: once it is over the owner's password works again.
    cache.delete(f"login:account:{_email_key(admin.email)}:wait")
    owner = Client(REMOTE_ADDR="10.1.1.3")
    response = owner.post(SIGN_IN, {"email": admin.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302


def _email_key(email: str) -> str:
    from minicrm.accounts.throttle import email_key

    return email_key(email)


def test_account_wait_doubles_and_is_capped(settings: Any) -> None:
    from minicrm.accounts.throttle import account_delay_seconds

    limit = settings.LOGIN_THROTTLE_ACCOUNT_ATTEMPTS
    settings.LOGIN_THROTTLE_MAX_DELAY_SECONDS = 60
    waits = [account_delay_seconds(attempts=limit + extra) for extra in range(0, 9)]
    assert waits == [0, 2, 4, 8, 16, 32, 60, 60, 60]
    assert account_delay_seconds(attempts=10**6) == 60


def test_colleagues_behind_one_address_do_not_add_up_to_a_lock(settings: Any, db: None) -> None:
    people = [UserFactory() for _ in range(settings.LOGIN_THROTTLE_ADDRESS_ATTEMPTS + 5)]
    for person in people:
        client = Client(REMOTE_ADDR="192.0.2.50")
        response = client.post(SIGN_IN, {"email": person.email, "password": DEFAULT_PASSWORD})
        assert response.status_code == 302, person.email


def test_behind_the_proxy_attackers_at_different_addresses_do_not_lock_each_other(
    settings: Any, admin: User
) -> None:
    settings.MINICRM_BEHIND_PROXY = True
    proxy = "10.0.0.2"
    victim = UserFactory(email="victim@example.com")
    for _ in range(6):
        guess(victim.email, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert guess(victim.email, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    # Enough failures from many people to lock everyone out if the proxy's address counted.
    for index in range(settings.LOGIN_THROTTLE_ADDRESS_ATTEMPTS + 5):
        response = guess(
            f"someone{index}@example.com", address=proxy, HTTP_X_FORWARDED_FOR=f"198.51.100.{index}"
        )
        assert response.status_code == 200

    other = guess(victim.email, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert other.status_code == 200  # a wrong guess from another address, checked normally
    owner = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="192.0.2.77")
    response = owner.post(SIGN_IN, {"email": admin.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="sign_in").get()
    assert event.ip_address == "192.0.2.77"


def test_without_the_proxy_setting_a_forged_forwarded_for_is_ignored(
    settings: Any, admin: User
) -> None:
    settings.MINICRM_BEHIND_PROXY = False
    statuses = [
        guess(
            admin.email, address="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.9.9.{index}"
        ).status_code
        for index in range(8)
    ]
    assert statuses == [200] * 5 + [429] * 3


@pytest.mark.parametrize(
    ("behind", "count", "forwarded", "expected"),
    [
        (False, 1, "6.6.6.6", "192.0.2.1"),
        (True, 1, "6.6.6.6, 198.51.100.4", "198.51.100.4"),
        (True, 2, "6.6.6.6, 198.51.100.4", "6.6.6.6"),
        (True, 2, "198.51.100.4", "192.0.2.1"),
        (True, 1, "not-an-address", "192.0.2.1"),
        (True, 1, "", "192.0.2.1"),
        (True, 1, " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_client_ip_trusts_only_the_entries_our_proxies_added(
    settings: Any, behind: bool, count: int, forwarded: str, expected: str
) -> None:
    settings.MINICRM_BEHIND_PROXY = behind
    settings.MINICRM_TRUSTED_PROXY_COUNT = count
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == expected


def _link_from_outbox() -> str:
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    start = body.index("/sign-in/link/")
    return body[start : body.index("\n", start)]


def test_owner_signs_in_with_the_link_while_their_own_address_is_throttled(
    settings: Any, admin: User
) -> None:
    address = "192.0.2.200"
    for index in range(settings.LOGIN_THROTTLE_ADDRESS_ATTEMPTS + 1):
        guess(f"spray{index}@example.com", address=address)
    owner = Client(REMOTE_ADDR=address)
    refused = owner.post(SIGN_IN, {"email": admin.email, "password": DEFAULT_PASSWORD})
    assert refused.status_code == 429

    answer = owner.post(reverse("accounts:sign_in_link_request"), {"email": admin.email})
    assert answer.status_code == 200
    assert mail.outbox[0].to == [admin.email]
    link = _link_from_outbox()

    page = owner.get(link)
    assert page.status_code == 200
    assert "_auth_user_id" not in owner.session  # a GET (a mail scanner) spends nothing
    response = owner.post(link)

    assert response.status_code == 302
    assert owner.session["_auth_user_id"] == str(admin.pk)
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "sign_in_link_sent" in actions
    assert AuditEvent.objects.get(action="sign_in").details == {"method": "link"}


def test_link_request_answers_the_same_for_an_unknown_email(admin: User) -> None:
    client = Client(REMOTE_ADDR="192.0.2.3")
    known = client.post(reverse("accounts:sign_in_link_request"), {"email": admin.email})
    unknown = client.post(reverse("accounts:sign_in_link_request"), {"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 200
    assert page_text(known).replace(admin.email, "X") == page_text(unknown).replace(
        "nobody@example.com", "X"
    )
    assert len(mail.outbox) == 1
    events = AuditEvent.objects.filter(action="sign_in_link_sent").order_by("id")
    assert [(event.actor_id, event.target, event.details["sent"]) for event in events] == [
        (None, admin.email, True),
        (None, "nobody@example.com", False),
    ]
    assert "It works once, for 15 minutes." in known.content.decode()


def test_link_request_without_an_email_names_the_field(admin: User) -> None:
    response = Client().post(reverse("accounts:sign_in_link_request"), {"email": "not-an-email"})

    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert mail.outbox == []


def test_link_requests_are_throttled_silently_per_email(admin: User) -> None:
    for index in range(6):
        Client(REMOTE_ADDR=f"192.0.2.{index + 1}").post(
            reverse("accounts:sign_in_link_request"), {"email": admin.email}
        )

    assert len(mail.outbox) == 3


def test_link_works_once(admin: User) -> None:
    Client().post(reverse("accounts:sign_in_link_request"), {"email": admin.email})
    link = _link_from_outbox()
    first = Client()
    assert first.post(link).status_code == 302

    second = Client()
    response = second.post(link)

    assert response.status_code == 400
    assert "This link no longer works" in response.content.decode()
    assert "_auth_user_id" not in second.session


def test_link_expires_after_fifteen_minutes(
    admin: User, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    assert settings.LOGIN_LINK_MAX_AGE_SECONDS == 900
    Client().post(reverse("accounts:sign_in_link_request"), {"email": admin.email})
    link = _link_from_outbox()
    now = time.time()
    monkeypatch.setattr("django.core.signing.time.time", lambda: now + 901)

    client = Client()
    response = client.post(link)

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_link_dies_when_the_password_changes(admin: User) -> None:
    Client().post(reverse("accounts:sign_in_link_request"), {"email": admin.email})
    link = _link_from_outbox()
    admin.set_password("a-new-password-2026")
    admin.save()

    assert Client().post(link).status_code == 400


def test_a_forged_link_signs_nobody_in(admin: User) -> None:
    client = Client()
    response = client.post(reverse("accounts:sign_in_link", args=["eyJ1IjoxfQ:abc:def"]))

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
