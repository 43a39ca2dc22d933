from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "minicrm.web"
    label = "web"
