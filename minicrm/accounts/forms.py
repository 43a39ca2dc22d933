"""Forms for signing in, the first admin and API tokens."""

from typing import Any

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.http import HttpRequest

from .models import User
from .services import client_ip
from .throttle import login_attempt_reserve, login_attempt_succeeded


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
        self.retry_after = 0  # seconds, when the attempt was throttled

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        email = cleaned.get("email", "").lower()
        password = cleaned.get("password")
        if not email or not password:
            return cleaned
        ip = client_ip(self.request)
        # Reserved before the password is checked, so parallel guesses cannot pass the limit.
        attempt = login_attempt_reserve(email=email, ip=ip)
        if not attempt.allowed:
            self.retry_after = attempt.retry_after
            raise forms.ValidationError(
                "Too many failed attempts. Wait a few minutes and try again, "
                "or ask below for a sign-in link by email.",
                code="throttled",
            )
        user = authenticate(self.request, username=email, password=password)
        if not isinstance(user, User):
            raise forms.ValidationError(self.invalid_message, code="invalid_login")
        login_attempt_succeeded(email=email, ip=ip)
        self.user = user
        return cleaned


class SignInLinkForm(forms.Form):
    email = forms.EmailField(
        label="Or get a one-time sign-in link at this address",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "id": "id_link_email"}),
    )


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
