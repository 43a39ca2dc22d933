from django.urls import path

from . import views, views_rates

app_name = "customers"

urlpatterns = [
    path("customers/", views.customer_list_page, name="list"),
    path("customers/<int:pk>/", views.customer_detail_page, name="detail"),
    path("customers/rates/", views_rates.rates_page, name="rates"),
]
