from django.urls import path

from . import views, views_health, views_timeline

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/figures/", views.dashboard_figures, name="dashboard_figures"),
    path("search/customers/", views.customer_search, name="customer_search"),
    path(
        "customers/<int:pk>/activity/",
        views_timeline.customer_timeline_fragment,
        name="customer_timeline",
    ),
    path("healthz", views_health.healthz, name="healthz"),
    path("readyz", views_health.readyz, name="readyz"),
]
