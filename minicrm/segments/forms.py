"""The rule builder's save form: a name, a description and the rule JSON the builder keeps."""

import json
from typing import Any

from django import forms

from .rules import EMPTY_RULES, RuleGroup, RuleValidationError, parse_rules

NAME_MAX_LENGTH = 100


class SegmentForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. Lapsed big spenders", "autocomplete": "off"}
        ),
    )
    description = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "What the segment is for (optional)"}
        ),
    )
    # The builder script writes the rule JSON here; the audience panel posts the same input.
    rules = forms.CharField(required=False, widget=forms.HiddenInput(attrs={"id": "rules-input"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # `{"path", "message"}` from the validator, shown by the builder under each row.
        self.rule_errors: list[dict[str, str]] = []

    def clean_rules(self) -> RuleGroup:
        raw = self.cleaned_data.get("rules") or json.dumps(EMPTY_RULES)
        try:
            return parse_rules(raw)
        except RuleValidationError as error:
            self.rule_errors = error.by_path()
            raise forms.ValidationError(
                "Some conditions need attention: see the highlighted rows.", code="invalid_rules"
            ) from None

    def rules_json(self) -> str:
        """The rules to load into the builder: what was posted, else the initial rules."""
        if self.is_bound:
            return self.data.get("rules") or json.dumps(EMPTY_RULES)
        return str(self.initial.get("rules") or json.dumps(EMPTY_RULES))
