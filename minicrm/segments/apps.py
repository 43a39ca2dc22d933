from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "minicrm.segments"
    label = "segments"
