from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from .api import api

# The API authenticates every route itself (bearer token or session), so the HTML login
# redirect must not apply to it: clients get a 401 JSON answer instead.
api_patterns, api_app_name, api_namespace = api.urls
for pattern in api_patterns:
    if callback := getattr(pattern, "callback", None):
        login_not_required(callback)

urlpatterns = [
    path("api/v1/", (api_patterns, api_app_name, api_namespace)),
    path("", include("minicrm.accounts.urls")),
    path("", include("minicrm.web.urls")),
    path("", include("minicrm.customers.urls")),
    path("", include("minicrm.imports.urls")),
    path("", include("minicrm.segments.urls")),
    path("", include("minicrm.insights.urls")),
]
