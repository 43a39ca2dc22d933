from django.urls import path

from minicrm.web.views import placeholder

app_name = "customers"

# Placeholder until the customers pages land; the page owner replaces it.
urlpatterns = [
    path("customers/", placeholder, {"section": "Customers"}, name="list"),
]
