from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "minicrm.customers"
    label = "customers"
