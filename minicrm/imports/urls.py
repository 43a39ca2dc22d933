from django.urls import path

from . import views

app_name = "imports"

urlpatterns = [
    path("imports/", views.imports_page, name="list"),
    path("imports/history/", views.imports_history, name="history"),
    path("imports/upload/", views.import_upload, name="upload"),
    path("imports/<int:pk>/mapping/", views.import_mapping_view, name="mapping"),
    path("imports/<int:pk>/resume/", views.import_resume_view, name="resume"),
]
