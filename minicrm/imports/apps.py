from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "minicrm.imports"
    label = "imports"
