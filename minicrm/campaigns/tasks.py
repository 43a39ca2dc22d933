"""Background work of campaigns (Django Tasks API): the launch, then the delivery in batches."""

from django_tasks import task


@task()
def campaign_launch_task(campaign_id: int) -> str | None:
    """Freeze the audience (at the scheduled time, for a scheduled campaign) and queue delivery."""
    from .services import campaign_launch  # the services enqueue this task

    campaign = campaign_launch(campaign_id=campaign_id)
    return None if campaign is None else str(campaign.status)


@task()
def campaign_deliver_task(campaign_id: int, attempt: int = 1) -> str | None:
    """Deliver a launched campaign's pending messages in batches (minicrm.campaigns.delivery)."""
    from .delivery import campaign_deliver

    return campaign_deliver(campaign_id=campaign_id, attempt=attempt)
