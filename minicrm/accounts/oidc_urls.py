"""The OIDC sign-in URLs, named as allauth's provider reverses them (no namespace)."""

from django.urls import path

from . import oidc_views

urlpatterns = [
    path("sign-in/oidc/<str:provider_id>/", oidc_views.oidc_login, name="openid_connect_login"),
    path(
        "sign-in/oidc/<str:provider_id>/callback/",
        oidc_views.oidc_callback,
        name="openid_connect_callback",
    ),
]
