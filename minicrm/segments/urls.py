from django.urls import path

from minicrm.web.views import placeholder

app_name = "segments"

# Placeholder until the segments pages land; the page owner replaces it.
urlpatterns = [
    path("segments/", placeholder, {"section": "Segments"}, name="list"),
]
