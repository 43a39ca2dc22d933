"""Per-token API rate limits: MINICRM_API_RATE_LIMIT requests per MINICRM_API_RATE_WINDOW seconds.

A fixed window per token, counted in the shared cache (so the limit holds across web processes):
the key names the token and the window's number, so a new window starts from zero without a
reset. A bulk upsert of 10,000 rows is one request like any other. Browser sessions are not
limited here: a person clicking is not a script.
"""

import math
import time

from django.conf import settings

from minicrm.core.cache_counters import cache_count
from minicrm.core.errors import ApplicationError


class TokenRateLimitedError(ApplicationError):
    """A 429; `retry_after`: seconds until the token's window ends (the Retry-After header)."""

    status_code = 429

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(f"Too many requests for this token; retry after {retry_after} seconds.")
        self.retry_after = retry_after


def api_rate_limit_check(*, token_id: int) -> None:
    """Count one request of the token; raise TokenRateLimitedError past the window's limit."""
    limit = settings.MINICRM_API_RATE_LIMIT
    window = settings.MINICRM_API_RATE_WINDOW_SECONDS
    if limit <= 0:
        return  # 0 turns the limit off
    now = time.time()
    number = int(now // window)
    retry_after = max(1, math.ceil((number + 1) * window - now))
    # Kept a little past the window's end so a counter never expires while its window is open.
    count = cache_count(f"api-rate:{token_id}:{window}:{number}", timeout=retry_after + 5)
    if count > limit:
        raise TokenRateLimitedError(retry_after=retry_after)
