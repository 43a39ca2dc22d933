"""One-time sign-in links by email: the way in that password throttling never blocks.

A link carries the user's id and a fingerprint of their sign-in state (last sign-in, password
hash, email, active flag), signed with SECRET_KEY and stamped with the time. Signing in moves
`last_login`, so a link works once; it expires after LOGIN_LINK_MAX_AGE_SECONDS (15 minutes);
changing the password or deactivating the user kills every link already sent. Nothing is stored.

Asking for a link always gets the same answer and the mail leaves from the worker, so neither
the page nor its timing tells whether an account exists. Requests are throttled per email and
per address (silently) so the form cannot be used to flood someone's inbox.
"""

from django.conf import settings
from django.contrib.auth import login
from django.core import signing
from django.core.mail import send_mail
from django.http import HttpRequest
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from minicrm.core.cache_counters import cache_count
from minicrm.core.tasks import enqueue_on_commit

from .client_address import client_ip
from .models import AuditEvent, User
from .services import audit_record
from .tasks import sign_in_link_send_task
from .throttle import email_key, login_throttle_clear

SALT = "minicrm.accounts.sign-in-link"
# Links asked for per email and per address in the throttle window, beyond which none are sent.
LINKS_PER_EMAIL = 3
LINKS_PER_ADDRESS = 20
BACKEND = "django.contrib.auth.backends.ModelBackend"


def _fingerprint(user: User) -> str:
    last_login = "" if user.last_login is None else user.last_login.replace(tzinfo=None).isoformat()
    state = f"{user.pk}|{user.email}|{user.password}|{last_login}|{user.is_active}"
    return salted_hmac(SALT, state).hexdigest()[:32]


def sign_in_link_token(*, user: User) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object({"u": user.pk, "f": _fingerprint(user)})


def sign_in_link_user(*, token: str) -> User | None:
    """The active user a link signs in, or None when it is forged, used, expired or stale."""
    try:
        payload = signing.TimestampSigner(salt=SALT).unsign_object(
            token, max_age=settings.LOGIN_LINK_MAX_AGE_SECONDS
        )
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int):
        return None
    user = User.objects.filter(pk=payload["u"], is_active=True).first()
    if user is None or not constant_time_compare(str(payload.get("f", "")), _fingerprint(user)):
        return None
    return user


def sign_in_link_request(*, email: str, request: HttpRequest) -> None:
    """Send a sign-in link to `email` if an active account uses it; the caller answers the same."""
    email = email.strip().lower()
    ip = client_ip(request)
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    throttled = (
        cache_count(f"login-link:email:{email_key(email)}", timeout=window) > LINKS_PER_EMAIL
        or cache_count(f"login-link:address:{ip or 'unknown'}", timeout=window) > LINKS_PER_ADDRESS
    )
    user = User.objects.filter(email=email, is_active=True).first()
    sent = user is not None and not throttled
    if user is not None and sent:
        enqueue_on_commit(sign_in_link_send_task, user.pk)
    # No actor: whoever asked is anonymous (the owner or not); the target names the address.
    audit_record(
        action=AuditEvent.Action.SIGN_IN_LINK_SENT,
        target=email[:200],
        details={"sent": sent, "throttled": throttled},
        request=request,
    )


def sign_in_link_send(*, user_id: int) -> bool:
    """Mail a fresh link to the user (the worker's half); False if the user is gone."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    path = reverse("accounts:sign_in_link", args=[sign_in_link_token(user=user)])
    url = settings.MINICRM_PUBLIC_URL.rstrip("/") + path
    minutes = settings.LOGIN_LINK_MAX_AGE_SECONDS // 60
    send_mail(
        subject="Your Mini CRM sign-in link",
        message=(
            f"Open this link to sign in to Mini CRM:\n\n{url}\n\n"
            f"It works once, for {minutes} minutes. If you did not ask for it, ignore this email:"
            " nobody can use it without access to your inbox."
        ),
        from_email=None,
        recipient_list=[user.email],
    )
    return True


def sign_in_link_use(*, token: str, request: HttpRequest) -> User | None:
    """Sign the link's user in (which spends the link), or None if the link is not valid."""
    user = sign_in_link_user(token=token)
    if user is None:
        return None
    login(request, user, backend=BACKEND)
    login_throttle_clear(email=user.email, ip=client_ip(request))
    audit_record(
        action=AuditEvent.Action.SIGN_IN,
        actor=user,
        target=user.email,
        details={"method": "link"},
        request=request,
    )
    return user
