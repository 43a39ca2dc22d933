"""The audit page's filters, read from the querystring so a filtered view can be shared."""

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from minicrm.core.limits import MAX_FILTER_DATE, MIN_FILTER_DATE

from .models import AuditEvent
from .selectors import audit_actor_list


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        required=False, choices=[("", "All actions"), *AuditEvent.Action.choices]
    )
    # Labels as the page shows them, so an error names the field the person sees.
    actor = forms.TypedChoiceField(label="Who", required=False, coerce=int, empty_value=None)
    target = forms.CharField(label="Target contains", required=False, max_length=200, strip=True)
    # Bounded: a day near year 9999 would overflow the time zone conversion of the filter.
    date_from = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(MIN_FILTER_DATE), MaxValueValidator(MAX_FILTER_DATE)],
    )
    date_to = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[MinValueValidator(MIN_FILTER_DATE), MaxValueValidator(MAX_FILTER_DATE)],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actor = self.fields["actor"]
        assert isinstance(actor, forms.TypedChoiceField)
        actor.choices = [
            ("", "Anyone"),
            *((user.pk, user.email) for user in audit_actor_list()),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date comes before the start date.")
        return cleaned

    def selector_filters(self) -> dict[str, Any]:
        """The keyword arguments of `audit_event_list` (call after is_valid())."""
        data = self.cleaned_data
        return {
            "action": data.get("action") or "",
            "actor_id": data.get("actor"),
            "target": data.get("target") or "",
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }
