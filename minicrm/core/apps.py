from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "minicrm.core"
    label = "core"
