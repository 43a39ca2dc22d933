from django.urls import path

from . import views

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("customers/", views.placeholder, {"section": "Customers"}, name="customers"),
    path("customers/search/", views.customer_search, name="customer_search"),
    path("segments/", views.placeholder, {"section": "Segments"}, name="segments"),
    path("campaigns/", views.placeholder, {"section": "Campaigns"}, name="campaigns"),
    path("imports/", views.placeholder, {"section": "Imports"}, name="imports"),
    path("healthz", views.healthz, name="healthz"),
]
