"""Every size and range limit of the product in one place (documented in docs/design.md, Limits).

Limits keep each request bounded in memory and time, and keep every stored value inside its column:
an input the limits accept must be storable and readable on every supported database.
"""

from decimal import Decimal

# --- Requests -------------------------------------------------------------------------------
# The largest request body read into memory (JSON, forms); larger ones are refused with 413
# before parsing. CSV uploads stream to disk and have their own limit (MINICRM_MAX_IMPORT_BYTES).
MAX_REQUEST_BODY_BYTES = 50 * 1024 * 1024

# --- Lists ----------------------------------------------------------------------------------
MAX_PAGE_SIZE = 500

# --- Ingestion ------------------------------------------------------------------------------
MAX_BATCH_ROWS = 10_000
MAX_TAGS = 50
MAX_TAG_LENGTH = 50

# --- Money ----------------------------------------------------------------------------------
# One order's amount: 12 digits with 2 places (the Order.amount column).
MAX_ORDER_AMOUNT = Decimal("9999999999.99")
