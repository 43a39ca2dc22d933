"""Writes for customers and orders (a package being split by entity; see orders.py).

Re-exports the public names so `from minicrm.customers.services import X` keeps working.
"""

from .orders import (
    CUSTOMER_FIELDS,
    MAX_BATCH_ROWS,
    ORDER_INSERT_FIELDS,
    STATS_FIELDS,
    BulkResult,
    RowError,
    customer_stats_rebuild,
    customer_stats_recompute,
    customers_bulk_upsert,
    order_delete,
    orders_bulk_delete,
    orders_bulk_upsert,
)

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
