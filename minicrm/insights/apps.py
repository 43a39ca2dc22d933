from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "minicrm.insights"
    label = "insights"
