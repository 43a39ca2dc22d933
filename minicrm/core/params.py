"""Typed request parameters shared by every API route: ids and date filters within their limits.

A value outside these ranges is a 422 naming the parameter, before any query runs: a huge id would
overflow the database driver, a date near year 9999 would overflow its timezone conversion.
"""

import re
from datetime import date
from typing import Annotated

from pydantic import BeforeValidator, Field

from .limits import MAX_FILTER_DATE, MAX_ID, MIN_FILTER_DATE

# Every id in a path or a filter (customer, order, import, segment, insight).
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day_only(value: object) -> object:
    # Pydantic also reads numbers as Unix times ("0" is 1970-01-01); the contract says YYYY-MM-DD.
    if isinstance(value, str) and not ISO_DAY.fullmatch(value):
        raise ValueError("must be a day written as YYYY-MM-DD")
    return value


# Every date filter (a day, inclusive).
FilterDate = Annotated[
    date, BeforeValidator(_iso_day_only), Field(ge=MIN_FILTER_DATE, le=MAX_FILTER_DATE)
]
