"""The rule builder's save form: a name, a description and the rule JSON the builder keeps."""

import json
from typing import Any

from django import forms

from .draft import draft_split
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
            data = json.loads(raw)
        except (ValueError, RecursionError):
            data = raw  # the validator says it is not JSON
        # The live count leaves unfinished rows and empty groups out; a save refuses them, by name.
        pending = draft_split(data).pending
        unfinished = [
            forms.ValidationError(
                f"{item.name[:1].upper()}{item.name[1:]} is not finished: "
                + (
                    "add a condition to it or remove it."
                    if item.is_group
                    else "give it a value or remove it."
                ),
                code="unfinished_rule",
            )
            for item in pending
        ]
        try:
            group = parse_rules(data)
        except RuleValidationError as error:
            self.rule_errors = error.by_path()
            pending_paths = tuple(f"{item.path}." for item in pending)
            if any(not f"{e['path']}.".startswith(pending_paths) for e in self.rule_errors):
                unfinished.append(
                    forms.ValidationError(
                        "Some conditions need attention: see the highlighted rows.",
                        code="invalid_rules",
                    )
                )
            raise forms.ValidationError(unfinished) from None
        if unfinished:
            self.rule_errors = [
                {"path": item.path, "message": "This group is empty: add a condition or remove it"}
                for item in pending
            ]
            raise forms.ValidationError(unfinished)
        return group

    def rules_json(self) -> str:
        """The rules to load into the builder: what was posted, else the initial rules."""
        if self.is_bound:
            return self.data.get("rules") or json.dumps(EMPTY_RULES)
        return str(self.initial.get("rules") or json.dumps(EMPTY_RULES))
