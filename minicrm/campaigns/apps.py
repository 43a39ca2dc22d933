from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "minicrm.campaigns"
    label = "campaigns"
