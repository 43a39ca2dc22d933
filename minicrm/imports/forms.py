"""The upload form of the imports page."""

from django import forms

from .models import Import


class ImportForm(forms.Form):
    kind = forms.ChoiceField(
        choices=Import.Kind.choices, initial=Import.Kind.CUSTOMERS, widget=forms.RadioSelect
    )
    file = forms.FileField(
        label="CSV file",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv", "data-drop-input": ""}),
        error_messages={"required": "Choose a CSV file to import."},
    )
