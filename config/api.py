"""The REST API (v1): one NinjaAPI, one router per domain app, errors mapped to {"detail": ...}."""

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from minicrm.accounts.api import router as accounts_router
from minicrm.accounts.api_auth import api_auth
from minicrm.core.errors import ApplicationError
from minicrm.customers.api import router as customers_router
from minicrm.imports.api import router as imports_router
from minicrm.insights.api import router as insights_router
from minicrm.segments.api import router as segments_router

api = NinjaAPI(
    title="Mini CRM API",
    version="1.0.0",
    description="Customers, orders, segments, insights and campaigns. "
    "Authenticate with `Authorization: Bearer <token>` or a browser session.",
    auth=api_auth,
    urls_namespace="api",
)
api.add_router("/", accounts_router)
api.add_router("/", customers_router)
api.add_router("/", imports_router)
api.add_router("/", segments_router)
api.add_router("/", insights_router)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    body: dict[str, object] = {"detail": exc.message}
    if exc.field:
        body["field"] = exc.field
    return api.create_response(request, body, status=exc.status_code)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"detail": "Authentication required: send a valid API token."}, status=401
    )


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    # Keep ninja's list of errors (each with its `loc`) and add one sentence naming the fields.
    fields = [".".join(str(part) for part in error.get("loc", [])[1:]) for error in exc.errors]
    named = ", ".join(field for field in fields if field) or "body"
    return api.create_response(
        request, {"detail": exc.errors, "message": f"Invalid input: {named}"}, status=422
    )
