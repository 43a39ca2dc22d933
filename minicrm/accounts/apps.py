from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "minicrm.accounts"
    label = "accounts"
