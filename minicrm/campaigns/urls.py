from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list_page, name="list"),
    path("campaigns/new/", views.campaign_new, name="new"),
    path("campaigns/preview/", views.campaign_preview_fragment, name="preview"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="detail"),
    path("campaigns/<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("campaigns/<int:pk>/progress/", views.campaign_progress_fragment, name="progress"),
    path("campaigns/<int:pk>/deliveries/", views.campaign_log_fragment, name="log"),
    path("campaigns/<int:pk>/cancel/", views.campaign_cancel_view, name="cancel"),
    path("campaigns/<int:pk>/summary/", views.campaign_summary_fragment, name="summary"),
    path("campaigns/<int:pk>/summarise/", views.campaign_summarise, name="summarise"),
    # The link in every message: no login, the token is the customer's signed id.
    path("u/<str:token>/", views.unsubscribe_page, name="unsubscribe"),
]
