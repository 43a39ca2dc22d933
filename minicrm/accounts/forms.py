"""Forms for signing in, the first admin and API tokens."""

from typing import Any

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.http import HttpRequest

from .models import User
from .services import client_ip
from .throttle import login_failure_record, login_failures_clear, login_is_throttled


class SignInForm(forms.Form):
    email = forms.EmailField(
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    # One message for a wrong email and a wrong password, so the form never tells which exists.
    invalid_message = "That email and password do not match an account."

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        email = cleaned.get("email", "").lower()
        password = cleaned.get("password")
        if not email or not password:
            return cleaned
        ip = client_ip(self.request)
        if login_is_throttled(email=email, ip=ip):
            raise forms.ValidationError(
                "Too many failed attempts. Wait a few minutes, then try again.", code="throttled"
            )
        user = authenticate(self.request, username=email, password=password)
        if not isinstance(user, User):
            login_failure_record(email=email, ip=ip)
            raise forms.ValidationError(self.invalid_message, code="invalid_login")
        login_failures_clear(email=email, ip=ip)
        self.user = user
        return cleaned


class FirstAdminForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False, label="Your name")
    email = forms.EmailField(
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters, not a common password.",
    )
    password_confirm = forms.CharField(
        strip=False,
        label="Repeat the password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password and password != cleaned.get("password_confirm"):
            self.add_error("password_confirm", "The two passwords differ.")
        elif password:
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Token name",
        widget=forms.TextInput(attrs={"placeholder": "e.g. Shopify sync"}),
    )
