"""Every size and range limit of the product in one place (documented in docs/design.md, Limits).

Limits keep each request bounded in memory and time, and keep every stored value inside its column:
an input the limits accept must be storable and readable on every supported database.
"""

from datetime import date
from decimal import Decimal

# --- Requests -------------------------------------------------------------------------------
# The largest request body read into memory (JSON, forms); larger ones are refused with 413
# before parsing. CSV uploads stream to disk and have their own limit (MINICRM_MAX_IMPORT_BYTES).
MAX_REQUEST_BODY_BYTES = 50 * 1024 * 1024
# Ids in paths and filters: a positive 64-bit integer, the range of every database's key column
# (a larger number overflows SQLite's driver before the query runs).
MAX_ID = 2**63 - 1
# Date filters (`ordered_from`, `ordered_to`): wide enough for any stored date, and far enough
# from year 9999 that the next day and the conversion to any timezone stay valid dates.
MIN_FILTER_DATE = date(1900, 1, 1)
MAX_FILTER_DATE = date(2999, 12, 31)

# --- Lists ----------------------------------------------------------------------------------
MAX_PAGE_SIZE = 500
# The deepest page: a table of 10M rows read one row per page. It keeps the offset (page x page
# size) far inside a 64-bit integer; a page past the last row is an empty page, not an error.
MAX_PAGE_NUMBER = 10_000_000

# --- Rule trees -----------------------------------------------------------------------------
# A segment's rules (DESIGN.md, "Segment rules"). Together these are the complexity budget of one
# tree: the parser refuses a tree past any of them with a 422 naming the budget, and the worst
# tree they allow runs on every supported database (tests/segments/test_worst_rules.py).
MAX_RULE_DEPTH = 5  # levels of nested groups, the top group included
MAX_RULE_CONDITIONS = 100  # conditions in the whole tree
MAX_RULE_GROUPS = 100  # nested groups in the whole tree
MAX_RULE_LIST_ITEMS = 500  # values in one list (`in`, `not_in`, `has_any`, ...)
# Values in all lists of the tree together: each list compiles to one IN (...) (one array
# parameter on PostgreSQL), and this keeps a query far below SQLite's 32,766 parameters.
MAX_RULE_TREE_LIST_ITEMS = 5_000
# Characters of text in all values of the tree together (bounds the query text to ~1 MB).
MAX_RULE_TREE_TEXT_CHARS = 100_000
MAX_RULE_TEXT_LENGTH = 255  # one text value (the customer's text columns hold at most 254)
MAX_RULE_MONEY = Decimal("1000000000000")
MAX_RULE_INTEGER = 1_000_000_000
MAX_RULE_DAYS = 36_500
MIN_RULE_DATE = date(1900, 1, 1)
MAX_RULE_DATE = date(2999, 12, 31)

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
