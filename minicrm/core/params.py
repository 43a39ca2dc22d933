"""Typed request parameters shared by every API route: ids and date filters within their limits.

A value outside these ranges is a 422 naming the parameter, before any query runs: a huge id would
overflow the database driver, a date near year 9999 would overflow its timezone conversion.
"""

from datetime import date
from typing import Annotated

from pydantic import Field

from .limits import MAX_FILTER_DATE, MAX_ID, MIN_FILTER_DATE

# Every id in a path or a filter (customer, order, import, segment, insight).
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

# Every date filter (a day, inclusive).
FilterDate = Annotated[date, Field(ge=MIN_FILTER_DATE, le=MAX_FILTER_DATE)]
