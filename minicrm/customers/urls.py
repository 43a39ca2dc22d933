from django.urls import path

from . import views

app_name = "customers"

urlpatterns = [
    path("customers/", views.customer_list_page, name="list"),
    path("customers/<int:pk>/", views.customer_detail_page, name="detail"),
]
