from django.urls import path  # noqa: F401 - the UI fills these patterns

app_name = "campaigns"

urlpatterns: list = []
