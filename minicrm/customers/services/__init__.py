"""Writes for customers and orders: set-based bulk upserts and exact customer stats.

One module per entity: customers.py (customer upserts), orders.py (order upserts and deletes),
stats.py (customer stats), batch.py (what every batch shares). This package re-exports their
public names, so `from minicrm.customers.services import X` keeps working for callers outside
the app; modules inside minicrm/customers import from the specific module.

Every entry point (REST, CSV import, demo data) stores rows through these functions. A batch of
up to 10,000 rows costs a fixed number of statements whatever its size: one lookup of existing
rows per IN-list chunk, one `executemany` per kind of write and one for the stats, all in one
transaction, on SQLite, PostgreSQL and MariaDB alike.

Semantics callers rely on:
- Upserts are keyed by `external_id`, or by email (`key="email"`, for files from a shop that
  know no key of ours): an existing customer with that email is updated, a new one keeps the
  row's external_id or gets one derived from the email (`external_id_from_email`), so the same
  export imported twice never duplicates anyone. Orders may find their customer by email too.
  Several customers sharing the email is a row error (nothing says which one is meant).
- A row that changes nothing is counted `unchanged` and not
  written, so resending a payload leaves every row (`updated_at` included) as it was.
- A key left out of a row keeps the stored value (CSV files may carry only some columns).
- The same `external_id` twice in one batch: the first row is stored, later ones are row errors.
- Customer stats (`total_spend`, `order_count`, `first_order_at`, `last_order_at`) count
  completed orders only and change in the same transaction as the orders. New completed orders
  add to the stats in SQL; any change to an existing order (status, amount, date, customer) or a
  deletion recomputes the affected customers with one grouped aggregate.
- A row that would take a customer's stats past their columns (MAX_CUSTOMER_SPEND,
  MAX_CUSTOMER_ORDERS) is a row error, checked in row order; the other rows are stored.
- Every batch locks rows in id order and inserts in key order, so concurrent batches naming the
  same keys in any order wait for each other instead of deadlocking; what the database still
  reports as retryable (a deadlock victim, a concurrent insert of the same key) runs again.
"""

from minicrm.core.limits import MAX_BATCH_ROWS

from ..ingestion import BulkResult, RowError
from .customers import CUSTOMER_FIELDS, customers_bulk_upsert
from .orders import ORDER_INSERT_FIELDS, order_delete, orders_bulk_delete, orders_bulk_upsert
from .stats import STATS_FIELDS, customer_stats_rebuild, customer_stats_recompute

__all__ = [
    "CUSTOMER_FIELDS",
    "MAX_BATCH_ROWS",
    "ORDER_INSERT_FIELDS",
    "STATS_FIELDS",
    "BulkResult",
    "RowError",
    "customer_stats_rebuild",
    "customer_stats_recompute",
    "customers_bulk_upsert",
    "order_delete",
    "orders_bulk_delete",
    "orders_bulk_upsert",
]
