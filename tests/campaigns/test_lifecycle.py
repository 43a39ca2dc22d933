"""The campaign lifecycle: drafts, sending once, scheduling, cancelling, and the launch snapshot."""

from datetime import timedelta

import pytest
from django.utils import timezone

from minicrm.campaigns.counters import counters_from_rows, counters_of
from minicrm.campaigns.models import Campaign, Delivery
from minicrm.campaigns.services import (
    campaign_cancel,
    campaign_create,
    campaign_launch,
    campaign_send,
    campaign_update,
)
from minicrm.core.errors import ConflictError, InvalidInputError
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def segment(marketer):
    return segment_create(
        name="Everyone", rules=parse_rules({"match": "all", "conditions": []}), created_by=marketer
    )


def draft(segment, marketer, **values):
    fields = {"name": "Spring", "segment_id": segment.pk, "template": "Hi {{ first_name }}"}
    return campaign_create(created_by=marketer, **(fields | values))


def test_a_template_with_an_unknown_placeholder_is_refused_naming_field_and_line(segment, marketer):
    with pytest.raises(InvalidInputError) as error:
        draft(segment, marketer, template="Hello\n{{ frist_name }}")
    assert error.value.field == "template"
    assert "line 2" in error.value.message
    assert "frist_name" in error.value.message


def test_only_a_draft_can_be_edited_and_a_campaign_is_sent_once(segment, marketer):
    campaign = draft(segment, marketer)
    campaign_update(campaign_id=campaign.pk, name="Spring sale")
    campaign_send(campaign_id=campaign.pk)
    with pytest.raises(ConflictError):
        campaign_send(campaign_id=campaign.pk)
    with pytest.raises(ConflictError):
        campaign_update(campaign_id=campaign.pk, name="Other")


def test_launch_freezes_the_reachable_members_and_counts_the_excluded(segment, marketer):
    reachable = CustomerFactory.create_batch(5)
    CustomerFactory(marketing_consent=False)
    CustomerFactory(unsubscribed_at=timezone.now())
    CustomerFactory(email="")
    campaign = draft(segment, marketer, channel="email", subject="Hello")
    campaign_send(campaign_id=campaign.pk)
    launched = campaign_launch(campaign_id=campaign.pk)
    assert launched.audience == 5
    assert launched.excluded == {"unsubscribed": 1, "no_consent": 1, "no_email": 1}
    assert set(Delivery.objects.values_list("customer_id", flat=True)) == {c.pk for c in reachable}
    assert counters_of(launched) == counters_from_rows(campaign.pk)
    # A second launch (a re-run task) writes nothing more.
    CustomerFactory()
    campaign_launch(campaign_id=campaign.pk)
    assert Delivery.objects.count() == 5


def test_the_holdout_is_the_exact_share_drawn_at_random(segment, marketer):
    CustomerFactory.create_batch(40)
    campaign = draft(segment, marketer, holdout_percent=25)
    campaign_send(campaign_id=campaign.pk)
    launched = campaign_launch(campaign_id=campaign.pk)
    assert launched.held_out == 10
    assert launched.pending == 30
    assert counters_of(launched) == counters_from_rows(campaign.pk)


def test_a_scheduled_campaign_can_be_cancelled_and_then_never_launches(segment, marketer):
    CustomerFactory.create_batch(3)
    campaign = draft(segment, marketer)
    campaign_send(campaign_id=campaign.pk, scheduled_at=timezone.now() + timedelta(hours=1))
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SCHEDULED
    campaign_cancel(campaign_id=campaign.pk)
    assert campaign_launch(campaign_id=campaign.pk) is None
    assert not Delivery.objects.exists()


def test_a_scheduled_campaign_is_not_launched_before_its_time(segment, marketer):
    CustomerFactory.create_batch(2)
    campaign = draft(segment, marketer)
    campaign_send(campaign_id=campaign.pk, scheduled_at=timezone.now() + timedelta(hours=1))
    assert campaign_launch(campaign_id=campaign.pk) is None
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SCHEDULED
    assert not Delivery.objects.exists()
