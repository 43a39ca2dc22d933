"""Create an API token for a user and print it alone on stdout (for scripts)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from minicrm.accounts.models import User
from minicrm.accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for the user with EMAIL and print the token (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="Command-line token")

    def handle(self, *args: Any, email: str, name: str, **options: Any) -> None:
        try:
            user = User.objects.get(email__iexact=email, is_active=True)
        except User.DoesNotExist as exc:
            raise CommandError(f"No active user with the email {email!r}.") from exc
        _token, raw = api_token_create(user=user, name=name)
        self.stdout.write(raw)
