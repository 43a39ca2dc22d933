from django.urls import path

from . import views, views_list

app_name = "segments"

urlpatterns = [
    path("segments/", views_list.segment_list_page, name="list"),
    path("segments/new/", views.segment_new, name="new"),
    path(
        "segments/new/from-customers/",
        views.segment_new_from_customers,
        name="new_from_customers",
    ),
    path("segments/preview/", views.segment_preview_fragment, name="preview"),
    path("segments/preview/funnel/", views.segment_funnel_fragment, name="preview_funnel"),
    path("segments/<int:pk>/", views.segment_detail, name="detail"),
    path("segments/<int:pk>/size/", views.segment_size_fragment, name="size"),
    path("segments/<int:pk>/edit/", views.segment_edit, name="edit"),
    path("segments/<int:pk>/delete/", views.segment_delete_view, name="delete"),
    path(
        "segments/for-customer/<int:customer_id>/",
        views.customer_segments_fragment,
        name="for_customer",
    ),
]
