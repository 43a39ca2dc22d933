"""The insight charts write money with Intl.NumberFormat in the shop locale (insights.views)."""

from django.test import override_settings

from minicrm.insights.views import chart_money


def test_the_facts_currency_goes_to_the_browser_with_the_shop_locale() -> None:
    assert chart_money("INR") == {"currency": "INR", "locale": "en-IN", "symbol": "₹"}
    with override_settings(MINICRM_CURRENCY="EUR", MINICRM_LOCALE="de"):
        assert chart_money("EUR") == {"currency": "EUR", "locale": "de", "symbol": "€"}


def test_facts_written_with_a_symbol_are_read_in_the_shop_currency() -> None:
    # Intl.NumberFormat throws on "₹": facts stored before money had a code were the shop's.
    assert chart_money("₹") == {"currency": "INR", "locale": "en-IN", "symbol": "₹"}
