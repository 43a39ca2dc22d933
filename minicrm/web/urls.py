from django.urls import path

from . import views

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("search/customers/", views.customer_search, name="customer_search"),
    path("healthz", views.healthz, name="healthz"),
]
