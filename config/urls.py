from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from .api import api

api_patterns, api_app_name, api_namespace = api.urls


@csrf_exempt
@login_not_required
def api_not_found(request: HttpRequest) -> JsonResponse:
    """What the API's own routes do not match (its root, say) is still an API answer: JSON."""
    return JsonResponse({"detail": "No such API URL."}, status=404)


# Ninja's root view answers /api/v1/ with an HTML 404; the name stays (the schema reverses it).
api_patterns = [
    path("", api_not_found, name="api-root") if getattr(p, "name", "") == "api-root" else p
    for p in api_patterns
]
# The API authenticates every route itself (bearer token or session), so the HTML login
# redirect must not apply to it: clients get a 401 JSON answer instead.
for pattern in api_patterns:
    if callback := getattr(pattern, "callback", None):
        login_not_required(callback)


urlpatterns = [
    path("api/v1/", (api_patterns, api_app_name, api_namespace)),
    re_path(r"^api/v1/", api_not_found),  # should a URL under the API escape its routes
    # Sign in with Google / OIDC: only the flow's start and callback, none of allauth's pages.
    path("", include("minicrm.accounts.oidc_urls")),
    path("", include("minicrm.accounts.urls")),
    path("", include("minicrm.web.urls")),
    path("", include("minicrm.customers.urls")),
    path("", include("minicrm.imports.urls")),
    path("", include("minicrm.segments.urls")),
    path("", include("minicrm.insights.urls")),
    path("", include("minicrm.campaigns.urls")),
]
