"""The REST API (v1): one NinjaAPI, one router per domain app, errors mapped to {"detail": ...}.

Three things hold for every operation, present and future, so they live here and not in routes:
- text a database would refuse (NUL, lone surrogates) anywhere in a JSON body, query string or
  form is a 422 naming its location (`TextCheckingParser`);
- a body over its limit is a 413 (`minicrm.core.request_limits`, and here when Django finds out
  while reading);
- the OpenAPI document lists the error answers every operation can give, with their real bodies
  (`document_error_responses`).
"""

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.parser import Parser
from ninja.types import DictStrAny
from pydantic import ConfigDict

from minicrm.accounts.api import router as accounts_router
from minicrm.accounts.api_auth import InvalidTokenError, api_auth
from minicrm.accounts.api_ratelimit import TokenRateLimitedError
from minicrm.campaigns.api import router as campaigns_router
from minicrm.campaigns.api_receipts import router as receipts_router
from minicrm.core.db_errors import database_busy_response, is_lock_timeout
from minicrm.core.errors import ApplicationError
from minicrm.core.limits import MAX_REQUEST_BODY_BYTES
from minicrm.core.text import text_problem
from minicrm.customers.api import router as customers_router
from minicrm.customers.api_rates import router as rates_router
from minicrm.imports.api import router as imports_router
from minicrm.insights.api import router as insights_router
from minicrm.segments.api import router as segments_router
from minicrm.segments.api import rules_error_body
from minicrm.segments.rules import RuleValidationError

# Body fields whose text a service checks itself, per route name: a bulk row with bad text is a
# row error (the other rows are stored), not a refusal of the whole batch.
ROW_CHECKED_BODY_FIELDS: dict[str, frozenset[str]] = {
    "customers_bulk": frozenset({"rows"}),
    "orders_bulk": frozenset({"rows"}),
}
# A body full of bad strings is named by its first few locations, not echoed back whole.
MAX_TEXT_ERRORS = 20


def _readable(value: object) -> str | int:
    """A location part safe to echo in JSON: bad characters shown as escapes."""
    if isinstance(value, int):
        return value
    text = str(value)
    return text.encode("unicode_escape").decode("ascii") if text_problem(text) else text


def _text_problems(value: object, loc: tuple[str | int, ...]) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            yield {"type": "text", "loc": [_readable(part) for part in loc], "msg": problem}
    elif isinstance(value, dict):
        for key, item in value.items():
            key_problem = text_problem(key)
            if key_problem:
                where = [_readable(part) for part in (*loc, key)]
                yield {"type": "text", "loc": where, "msg": f"Key: {key_problem}"}
            yield from _text_problems(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _text_problems(item, (*loc, index))


def raise_text_problems(value: object, loc: tuple[str | int, ...]) -> None:
    errors = []
    for error in _text_problems(value, loc):
        errors.append(error)
        if len(errors) == MAX_TEXT_ERRORS:
            break
    if errors:
        raise ValidationError(errors)


class TextCheckingParser(Parser):
    """Ninja's parser, refusing text no database can store before any route sees it."""

    def parse_body(self, request: HttpRequest) -> DictStrAny:
        data = super().parse_body(request)
        match = request.resolver_match
        skipped = ROW_CHECKED_BODY_FIELDS.get(match.url_name or "", frozenset()) if match else None
        if isinstance(data, dict) and skipped:
            raise_text_problems({k: v for k, v in data.items() if k not in skipped}, ("body",))
        else:
            raise_text_problems(data, ("body",))
        return data

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> DictStrAny:
        result = super().parse_querydict(data, list_fields, request)
        if data is request.GET:
            raise_text_problems(result, ("query",))
        elif data is request.POST:
            raise_text_problems(result, ("form",))
        else:
            names = {key: [upload.name for upload in data.getlist(key)] for key in data}
            raise_text_problems(names, ("file",))
        return result


# --- The error bodies, as documented ------------------------------------------------------------
class ErrorDetailOut(Schema):
    """Every error but a validation error: one sentence, and the field when one is to blame."""

    detail: str
    field: str | None = None


class ValidationErrorItemOut(Schema):
    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(Schema):
    """A 422: each problem with its location (`["body", "name"]`), and one sentence naming them."""

    detail: list[ValidationErrorItemOut]
    message: str


ERROR_RESPONSES = {
    400: "The request cannot be read (malformed JSON) or is not allowed as sent.",
    401: "No valid API token or browser session.",
    403: "The caller's role does not allow this, or the CSRF check failed.",
    404: "No such object or URL.",
    409: "The request conflicts with stored data.",
    413: "The request body is larger than its limit.",
    422: "The input is invalid; every problem is named by its location.",
    429: "Too many requests for this API token; retry after the Retry-After header's seconds.",
    503: "The database is busy; retry after the Retry-After header's seconds.",
}
_ERROR_SCHEMAS = (ErrorDetailOut, ValidationErrorOut)
_REF = "#/components/schemas/{model}"


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document_error_responses(document: OpenAPISchema) -> None:
    """Add the error answers to every operation; a route's own 422 body becomes one of several."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for model in _ERROR_SCHEMAS:
        schema = model.model_json_schema(ref_template=_REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    detail_ref = {"$ref": _REF.format(model=ErrorDetailOut.__name__)}
    validation_ref = {"$ref": _REF.format(model=ValidationErrorOut.__name__)}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                declared = responses.pop(status, None) or responses.pop(str(status), None)
                if status != 422:
                    responses[status] = declared or _json_body(detail_ref, description)
                    continue
                schemas = [validation_ref, detail_ref]
                if declared:
                    own = declared.get("content", {}).get("application/json", {}).get("schema")
                    schemas = [own, *schemas] if own else schemas
                responses[status] = _json_body({"anyOf": schemas}, description)


class MiniCrmApi(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: DictStrAny | None = None
    ) -> OpenAPISchema:
        document = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        document_error_responses(document)
        return document


api = MiniCrmApi(
    title="Mini CRM API",
    version="1.0.0",
    description="Customers, orders, segments, insights and campaigns. "
    "Authenticate with `Authorization: Bearer <token>` or a browser session. "
    'Errors are JSON `{"detail": ...}`: a sentence, or for 422 a list of problems by location.',
    auth=api_auth,
    urls_namespace="api",
    parser=TextCheckingParser(),
)
api.add_router("/", accounts_router)
api.add_router("/", customers_router)
api.add_router("/", rates_router)
api.add_router("/", imports_router)
api.add_router("/", segments_router)
api.add_router("/", insights_router)
api.add_router("/", campaigns_router)
api.add_router("/", receipts_router)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    body: dict[str, object] = {"detail": exc.message}
    if exc.field:
        body["field"] = exc.field
    return api.create_response(request, body, status=exc.status_code)


@api.exception_handler(InvalidTokenError)
def invalid_token(request: HttpRequest, exc: InvalidTokenError) -> HttpResponse:
    response = application_error(request, exc)
    response["WWW-Authenticate"] = 'Bearer error="invalid_token"'  # RFC 6750
    return response


@api.exception_handler(TokenRateLimitedError)
def token_rate_limited(request: HttpRequest, exc: TokenRateLimitedError) -> HttpResponse:
    response = application_error(request, exc)
    response["Retry-After"] = str(exc.retry_after)
    return response


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


@api.exception_handler(RuleValidationError)
def rule_validation_error(request: HttpRequest, exc: RuleValidationError) -> HttpResponse:
    # Every route that takes rules parses them and lets this answer, in one shape.
    return api.create_response(request, rules_error_body(exc), status=422)


@api.exception_handler(RequestDataTooBig)
def request_data_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    # A body without a usable Content-Length, found too large only while Django reads it.
    return api.create_response(
        request,
        {"detail": f"The request body is larger than {MAX_REQUEST_BODY_BYTES:,} bytes."},
        status=413,
    )


@api.exception_handler(OperationalError)
def database_busy(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    # With DEBUG on, ninja answers what it does not handle with its own 500 page, so the
    # DatabaseBusyMiddleware would never see a lock timeout: map it here too.
    if is_lock_timeout(exc):
        return database_busy_response(request)
    raise exc


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja reports any failure to parse a body as a 400 "Cannot parse request body" caused by the
    # parser's exception: the parser's own refusals keep their status and their locations.
    if isinstance(exc.__cause__, ValidationError):
        return validation_error(request, exc.__cause__)
    if isinstance(exc.__cause__, RequestDataTooBig):
        return request_data_too_big(request, exc.__cause__)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)
