"""The composer's form: what a marketer types, turned into the keyword arguments of the services.

The form checks only what a browser can get wrong (types, required fields, the time to schedule
for); every rule about campaigns (the template compiles, the holdout share, an email's subject)
stays in `services`, whose errors the view shows under the field they name.
"""

from typing import Any

from django import forms
from django.utils import timezone

from minicrm.segments.models import Segment

from .models import Campaign, Channel
from .services import MAX_HOLDOUT_PERCENT


class Action:
    """What the composer's submit buttons ask for."""

    SAVE = "save"
    SEND = "send"
    SCHEDULE = "schedule"
    CHOICES = ((SAVE, "Save draft"), (SEND, "Send now"), (SCHEDULE, "Schedule"))


# Service argument -> form field, where the names differ.
FORM_FIELD_OF = {"segment_id": "segment"}


class SegmentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Segment) -> str:
        if obj.last_count is None:
            return obj.name
        return f"{obj.name} ({obj.last_count:,})"


class CampaignForm(forms.Form):
    name = forms.CharField(
        max_length=120,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. Spring win-back", "autocomplete": "off"}
        ),
    )
    segment = SegmentChoiceField(
        queryset=Segment.objects.order_by("name"),
        empty_label="Choose a segment…",
        error_messages={"invalid_choice": "No such segment."},
    )
    channel = forms.ChoiceField(
        choices=Channel.choices, initial=Channel.LOG, widget=forms.RadioSelect
    )
    subject = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"placeholder": 'e.g. {{ first_name | default("Hi") }}, something new for you'}
        ),
    )
    # Not stripped: a message of blanks reaches the service, which says what is missing.
    template = forms.CharField(
        strip=False,
        label="Message",
        error_messages={"required": "Write the message."},
        widget=forms.Textarea(
            attrs={
                "rows": 8,
                "spellcheck": "true",
                "placeholder": 'Hi {{ first_name | default("there") }}, …',
            }
        ),
    )
    holdout_percent = forms.IntegerField(
        label="Holdout",
        min_value=0,
        max_value=MAX_HOLDOUT_PERCENT,
        initial=0,
        help_text="A random share of the audience that gets nothing, to measure the true lift.",
        widget=forms.NumberInput(attrs={"step": 1}),
    )
    scheduled_at = forms.DateTimeField(
        required=False,
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    action = forms.ChoiceField(choices=Action.CHOICES, initial=Action.SAVE, required=False)

    def clean_action(self) -> str:
        return self.cleaned_data.get("action") or Action.SAVE

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("action") == Action.SCHEDULE:
            when = cleaned.get("scheduled_at")
            if when is None and "scheduled_at" not in self.errors:
                self.add_error("scheduled_at", "Pick the day and time to send it.")
            elif when is not None and when <= timezone.now():
                self.add_error("scheduled_at", "Pick a time in the future, or send it now.")
        return cleaned

    def campaign_values(self) -> dict[str, Any]:
        """The editable fields as `campaign_create` / `campaign_update` take them."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "segment_id": data["segment"].pk,
            "channel": data["channel"],
            "subject": data["subject"] if data["channel"] != Channel.LOG else "",
            "template": data["template"],
            "holdout_percent": data["holdout_percent"],
        }

    @staticmethod
    def initial_of(campaign: Campaign) -> dict[str, Any]:
        return {
            "name": campaign.name,
            "segment": campaign.segment_id,
            "channel": campaign.channel,
            "subject": campaign.subject,
            "template": campaign.template,
            "holdout_percent": campaign.holdout_percent,
        }
