from django.urls import path

from . import views

app_name = "insights"

urlpatterns = [
    path(
        "segments/<int:segment_id>/insights/panel/",
        views.segment_panel,
        name="segment_panel",
    ),
    path(
        "segments/<int:segment_id>/insights/generate/",
        views.segment_generate,
        name="segment_generate",
    ),
    path(
        "segments/<int:segment_id>/insights/suggest-messages/",
        views.suggest_messages,
        name="suggest_messages",
    ),
]
