"""People whose identity must never reach an AI provider, and every spelling of it to look for."""

from collections.abc import Iterable
from typing import Any

# Names and contacts no aggregate could produce by chance.
DISTINCTIVE = [
    {
        "external_id": "EXT-ZQX-000417",
        "first_name": "Zebediah",
        "last_name": "Quackenbush",
        "email": "zebediah.quackenbush@unusual-mail.test",
        "phone": "+91 98123 45678",
    },
    {
        "external_id": "EXT-ZQX-000418",
        "first_name": "Philomena",
        "last_name": "Vanderbeek",
        "email": "p.vanderbeek@rare-domain.test",
        "phone": "+44 7700 900123",
    },
]


def identifying(people: Iterable[dict[str, Any]] = DISTINCTIVE) -> list[str]:
    """Each identifying value of these people, also as a phone without spaces and an email's
    local part."""
    people = list(people)
    values = [
        person[key]
        for person in people
        for key in ("external_id", "first_name", "last_name", "email", "phone")
    ]
    values += [person["phone"].replace(" ", "") for person in people]
    values += [person["email"].split("@")[0] for person in people]
    return values
