"""Text every supported database can store: one check shared by ingestion and request validation.

PostgreSQL refuses the NUL character in text and JSON columns, and no database driver can encode a
lone UTF-16 surrogate (JSON's "\\ud800" escape) as UTF-8. Both arrive through valid JSON and CSV,
so they are refused with a message naming the field instead of failing inside the database.
"""

import re
from collections.abc import Mapping
from typing import Any

# A str holding a code point in this range is a lone surrogate: the JSON parser joins valid pairs.
_REFUSED = re.compile("[\x00\ud800-\udfff]")
_NUL_MESSAGE = "Must not contain the NUL character (\\u0000)."
_SURROGATE_MESSAGE = "Must not contain a lone surrogate (\\ud800-\\udfff); send valid Unicode text."


def text_problem(value: Any) -> str | None:
    """Why a database would refuse this value's text, or None if every database can store it.

    Looks into lists, tuples and dicts (keys and values), as JSON columns hold them.
    """
    if isinstance(value, str):
        found = _REFUSED.search(value)
        if found is None:
            return None
        return _NUL_MESSAGE if found.group() == "\x00" else _SURROGATE_MESSAGE
    if isinstance(value, Mapping):
        for key, item in value.items():
            problem = text_problem(key) or text_problem(item)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = text_problem(item)
            if problem:
                return problem
    return None
