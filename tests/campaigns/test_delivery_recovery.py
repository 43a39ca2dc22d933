"""The recovery sweep's part for campaigns: what a killed worker leaves is queued again once,
and work that is only waiting (a fresh launch, a retry not yet due, a live lease) is left alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from minicrm.campaigns import recovery, tasks
from minicrm.campaigns.models import Campaign
from minicrm.campaigns.recovery import campaigns_recover
from minicrm.campaigns.services import campaign_launch, campaign_send
from tests.factories import CustomerFactory

from .conftest import campaign_draft

pytestmark = pytest.mark.django_db(transaction=False)


class Queued:
    """Records the tasks the sweep queues instead of running them."""

    def __init__(self, name: str, calls: list[tuple[str, int]]) -> None:
        self.name, self.calls = name, calls

    def enqueue(self, campaign_id: int) -> None:
        self.calls.append((self.name, campaign_id))


@pytest.fixture
def queued(monkeypatch, django_capture_on_commit_callbacks):
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(tasks, "campaign_deliver_task", Queued("deliver", calls))
    monkeypatch.setattr(tasks, "campaign_launch_task", Queued("launch", calls))
    return calls


def sweep(django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return campaigns_recover()


def launched(segment):
    CustomerFactory.create_batch(3)
    campaign = campaign_draft(segment)
    campaign_send(campaign_id=campaign.pk)
    campaign_launch(campaign_id=campaign.pk)
    return campaign


AGO = timedelta(minutes=5)


def test_a_delivery_whose_lease_ran_out_is_queued_again_once(
    everyone, queued, django_capture_on_commit_callbacks
):
    campaign = launched(everyone)
    Campaign.objects.filter(pk=campaign.pk).update(
        lease_token="dead", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert sweep(django_capture_on_commit_callbacks) == 1
    assert sweep(django_capture_on_commit_callbacks) == 0  # the claim holds it for a lease
    assert queued == [("deliver", campaign.pk)]
    campaign.refresh_from_db()
    assert campaign.lease_token == ""
    assert campaign.lease_expires_at > timezone.now()


def test_a_launch_killed_before_its_snapshot_is_queued_again(
    everyone, queued, django_capture_on_commit_callbacks
):
    CustomerFactory.create_batch(2)
    campaign = campaign_draft(everyone)
    campaign_send(campaign_id=campaign.pk)
    # A SIGKILL mid-launch rolls the snapshot back: sending, no rows, no task to come.
    Campaign.objects.filter(pk=campaign.pk).update(launched_at=timezone.now() - AGO)
    assert sweep(django_capture_on_commit_callbacks) == 1
    assert queued == [("launch", campaign.pk)]


def test_a_scheduled_launch_long_past_its_time_is_queued_again(
    everyone, queued, django_capture_on_commit_callbacks
):
    campaign = campaign_draft(everyone)
    campaign_send(campaign_id=campaign.pk, scheduled_at=timezone.now() + timedelta(hours=1))
    assert sweep(django_capture_on_commit_callbacks) == 0
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now() - AGO)
    assert sweep(django_capture_on_commit_callbacks) == 1
    assert queued == [("launch", campaign.pk)]


def test_work_that_is_only_waiting_is_left_alone(
    everyone, queued, django_capture_on_commit_callbacks
):
    fresh = launched(everyone)  # its delivery task is on its way
    held = launched(everyone)
    Campaign.objects.filter(pk=held.pk).update(
        lease_token="live", lease_expires_at=timezone.now() + timedelta(seconds=20)
    )
    waiting_retry = launched(everyone)
    Campaign.objects.filter(pk=waiting_retry.pk).update(
        lease_token="", lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    sending_now = campaign_draft(everyone)
    campaign_send(campaign_id=sending_now.pk)  # the launch task is on its way
    assert {fresh.pk, held.pk, waiting_retry.pk, sending_now.pk} <= set(
        Campaign.objects.values_list("pk", flat=True)
    )
    assert sweep(django_capture_on_commit_callbacks) == 0
    assert queued == []


def test_a_fresh_snapshot_is_recovered_once_a_lease_old(
    everyone, queued, django_capture_on_commit_callbacks
):
    campaign = launched(everyone)
    Campaign.objects.filter(pk=campaign.pk).update(snapshot_at=timezone.now() - AGO)
    assert sweep(django_capture_on_commit_callbacks) == 1
    assert queued == [("deliver", campaign.pk)]


def test_the_recoverer_is_named_in_settings(settings):
    assert settings.MINICRM_WORK_RECOVERERS["campaigns"] == (
        f"{recovery.__name__}.{campaigns_recover.__name__}"
    )
