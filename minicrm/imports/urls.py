from django.urls import path

from minicrm.web.views import placeholder

app_name = "imports"

# Placeholder until the imports pages land; the page owner replaces it.
urlpatterns = [
    path("imports/", placeholder, {"section": "Imports"}, name="list"),
]
