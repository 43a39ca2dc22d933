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
# Rows in one bulk request or one import transaction (about 1-2 s of writing on SQLite).
MAX_BATCH_ROWS = 10_000
MAX_TAGS = 50
MAX_TAG_LENGTH = 50  # the CustomerTag.name column
# Outside these years a date is far more likely a typo than a real signup or order, and the
# bounds keep every database's datetime type (MariaDB starts at year 1000) out of trouble.
MIN_YEAR, MAX_YEAR = 1900, 2200

# --- Money ----------------------------------------------------------------------------------
# Amounts have 2 decimal places. One order's amount: 12 digits (the Order.amount column).
MAX_ORDER_AMOUNT = Decimal("9999999999.99")
# A customer's total spend over completed orders: 14 digits (the Customer.total_spend column),
# room for a hundred orders of the largest amount. An order that would take a total past it is
# a row error; the average order value is never larger than the total, so it always fits.
MAX_CUSTOMER_SPEND = Decimal("999999999999.99")
# A customer's completed orders (Customer.order_count, a 32-bit integer on every database).
MAX_CUSTOMER_ORDERS = 2_147_483_647

# --- Background work ------------------------------------------------------------------------
# How many times an import may lose its worker and be resumed automatically before it is failed:
# a file that kills its worker every time (out of memory on one chunk) must not loop forever.
MAX_WORK_RECOVERIES = 3
