"""Domain errors that every interface (API, HTML, CLI) turns into a clear message."""


class ApplicationError(Exception):
    """A request that cannot be carried out; `message` is safe to show to the user."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PermissionDeniedError(ApplicationError):
    status_code = 403


class NotFoundError(ApplicationError):
    status_code = 404


class ConflictError(ApplicationError):
    status_code = 409


class InvalidInputError(ApplicationError):
    """Input that reads but cannot be used (a template that does not compile, say): a 422."""

    status_code = 422
