"""Role checks shared by HTML views and API routes."""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from minicrm.core.errors import PermissionDeniedError

from .models import Role, User

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., Any])


def require_role(user: Any, role: Role) -> User:
    """Return the user if they hold `role` (or above); otherwise raise a 403."""
    if not isinstance(user, User) or not user.has_role(role):
        raise PermissionDeniedError(f"This needs the {role.label.lower()} role.")
    return user


def role_required(role: Role) -> Callable[[ViewFunc], ViewFunc]:
    """Decorator for HTML views; the login itself is enforced by LoginRequiredMiddleware."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            user = request.user
            if not isinstance(user, User) or not user.has_role(role):
                raise PermissionDenied(f"This needs the {role.label.lower()} role.")
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
