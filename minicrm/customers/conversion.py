"""Orders' amounts in the shop currency at ingestion: each batch's rates read once, row errors
where an order's currency has no rate for its date (minicrm.customers.currency)."""

from datetime import date
from decimal import Decimal

from minicrm.core.limits import MAX_ORDER_AMOUNT

from .currency import amount_at_rate, order_day, rate_missing_message, rates_for, shop_currency
from .ingestion import OrderRow, RowError


def orders_convert(
    valid: list[tuple[int, OrderRow]], *, stored_currencies: dict[str, str]
) -> dict[int, tuple[str, Decimal] | RowError]:
    """Each row's currency and amount in the shop currency, or the row error saying why not.

    A row without a currency keeps its stored order's, or is in the shop currency. The rates
    are looked up once per (currency, day) for the whole batch (minicrm.customers.currency).
    """
    shop = shop_currency()
    converted: dict[int, tuple[str, Decimal] | RowError] = {}
    foreign: list[tuple[int, OrderRow, str, date]] = []
    for index, row in valid:
        currency = row.currency or stored_currencies.get(row.external_id) or shop
        if currency == shop:
            converted[index] = (currency, row.amount)
        else:
            foreign.append((index, row, currency, order_day(row.ordered_at)))
    if not foreign:
        return converted
    rates = rates_for({(currency, day) for _index, _row, currency, day in foreign}, lock=True)
    for index, row, currency, day in foreign:
        rate = rates[(currency, day)]
        if rate is None:
            converted[index] = RowError(index, "currency", rate_missing_message(currency, day))
            continue
        amount = amount_at_rate(row.amount, rate)
        if amount > MAX_ORDER_AMOUNT:
            converted[index] = RowError(
                index,
                "amount",
                f"{row.amount:,} {currency} is {amount:,} {shop} at the rate of {day}, past "
                f"the most an order can hold ({MAX_ORDER_AMOUNT:,}).",
            )
            continue
        converted[index] = (currency, amount)
    return converted
