"""Admin writes on people: change a role, deactivate (tokens and sessions end) and reactivate."""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from minicrm.core.errors import ConflictError, InvalidInputError, NotFoundError

from .models import ApiToken, AuditEvent, Role, User
from .services import audit_record

LAST_ADMIN_MESSAGE = "{email} is the last active admin: make someone else an admin first."


def _user_lock(user_id: int) -> User:
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFoundError("No such user.")
    return user


def _last_admin_guard(user: User) -> None:
    """Refuse to take the admin role from the last active admin, who would lock everyone out."""
    if not (user.is_active and user.role == Role.ADMIN):
        return
    # Locked in a stable order, so two admins demoting each other at once cannot both pass.
    admins = list(
        User.objects.select_for_update()
        .filter(role=Role.ADMIN, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if admins == [user.pk]:
        raise ConflictError(LAST_ADMIN_MESSAGE.format(email=user.email), field="role")


@transaction.atomic
def user_role_change(
    *, user_id: int, role: str, actor: User, request: HttpRequest | None = None
) -> User:
    try:
        new_role = Role(role)
    except ValueError as exc:
        raise InvalidInputError(f"Unknown role {role!r}.", field="role") from exc
    user = _user_lock(user_id)
    old_role = user.role
    if old_role == new_role:
        return user
    if new_role != Role.ADMIN:
        _last_admin_guard(user)
    user.role = new_role
    # Django's own flags follow the role, so has_perm() never outranks it.
    user.is_staff = user.is_superuser = new_role == Role.ADMIN
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    audit_record(
        action=AuditEvent.Action.ROLE_CHANGED,
        actor=actor,
        target=user.email,
        details={"from": old_role, "to": new_role.value},
        request=request,
    )
    return user


def user_sessions_end(*, user: User) -> int:
    """Delete the user's stored sessions; returns how many. Sessions kept elsewhere (cache or
    signed cookies) cannot be listed: those end at the next request, where Django's ModelBackend
    refuses an inactive user."""
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store_class, DatabaseSessionStore):  # db and cached_db
        return 0
    # The session table is not keyed by user, so every live session is decoded: deactivation
    # is rare and a CRM's sessions are few (one or two per person).
    model = store_class.get_model_class()
    live = model.objects.filter(expire_date__gt=timezone.now())
    ended = 0
    for key, data in live.values_list("session_key", "session_data").iterator():
        if store_class().decode(data).get(SESSION_KEY) == str(user.pk):
            store_class(session_key=key).delete()  # clears cached_db's cache entry too
            ended += 1
    return ended


@transaction.atomic
def user_deactivate(*, user_id: int, actor: User, request: HttpRequest | None = None) -> User:
    """Stop a user from signing in: their API tokens are revoked and their sessions end."""
    user = _user_lock(user_id)
    if not user.is_active:
        return user
    _last_admin_guard(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    sessions = user_sessions_end(user=user)
    audit_record(
        action=AuditEvent.Action.USER_DEACTIVATED,
        actor=actor,
        target=user.email,
        details={"tokens_revoked": tokens, "sessions_ended": sessions},
        request=request,
    )
    return user


@transaction.atomic
def user_reactivate(*, user_id: int, actor: User, request: HttpRequest | None = None) -> User:
    """Let a deactivated user sign in again; revoked tokens stay revoked."""
    user = _user_lock(user_id)
    if user.is_active:
        return user
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(
        action=AuditEvent.Action.USER_REACTIVATED,
        actor=actor,
        target=user.email,
        request=request,
    )
    return user
