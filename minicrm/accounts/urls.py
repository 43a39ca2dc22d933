from django.urls import path

from . import views, views_audit, views_users

app_name = "accounts"

urlpatterns = [
    path("sign-in/", views.sign_in, name="login"),
    path("sign-in/link/", views.sign_in_link_request_view, name="sign_in_link_request"),
    path("sign-in/link/<str:token>/", views.sign_in_link, name="sign_in_link"),
    path("sign-out/", views.sign_out, name="logout"),
    path("setup/", views.first_admin, name="first_admin"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/audit/", views_audit.audit_page, name="audit"),
    path("settings/tokens/", views.token_create, name="token_create"),
    path("settings/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("settings/invitations/", views_users.invitation_create_view, name="invitation_create"),
    path(
        "settings/invitations/<int:invitation_id>/revoke/",
        views_users.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("settings/users/<int:user_id>/role/", views_users.user_role_view, name="user_role"),
    path(
        "settings/users/<int:user_id>/deactivate/",
        views_users.user_deactivate_view,
        name="user_deactivate",
    ),
    path(
        "settings/users/<int:user_id>/reactivate/",
        views_users.user_reactivate_view,
        name="user_reactivate",
    ),
    path("invitations/<str:token>/", views_users.invitation_accept_view, name="invitation_accept"),
]
