"""Money written by Babel for the shop currency and locale (minicrm.core.formatting)."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from minicrm.core.formatting import (
    currency_symbol,
    money,
    money_compact,
    money_format_options,
    money_with_original,
)

ROOT = Path(__file__).resolve().parents[2]
NBSP = "\xa0"


def test_inr_is_written_with_indian_grouping() -> None:
    assert money(Decimal("6904874")) == "₹69,04,874"
    assert money(Decimal("6904874.4"), 2) == "₹69,04,874.40"
    assert money(Decimal("999")) == "₹999"
    assert money(Decimal("100000")) == "₹1,00,000"


def test_the_default_locale_follows_the_currency() -> None:
    # en_IN for INR (lakh grouping), en otherwise: decided in settings from the currency.
    assert settings.MINICRM_CURRENCY == "INR"
    assert settings.MINICRM_LOCALE == "en_IN"


@override_settings(MINICRM_CURRENCY="USD", MINICRM_LOCALE="en")
def test_usd_in_english() -> None:
    assert money(Decimal("6904874.4")) == "$6,904,874"
    assert money(Decimal("6904874.4"), 2) == "$6,904,874.40"
    assert currency_symbol() == "$"


@pytest.mark.parametrize(
    ("locale", "whole", "cents"),
    [
        ("de", f"1.234{NBSP}€", f"1.234,50{NBSP}€"),
        ("en", "€1,234", "€1,234.50"),
    ],
)
def test_eur_in_german_and_english(locale: str, whole: str, cents: str) -> None:
    with override_settings(MINICRM_CURRENCY="EUR", MINICRM_LOCALE=locale):
        assert money(Decimal("1234.4")) == whole
        assert money(Decimal("1234.5"), 2) == cents


def test_rounding_is_half_up_like_the_amounts() -> None:
    # Banker's rounding would write ₹12 and ₹14: amounts themselves round half-up.
    assert money(Decimal("12.5")) == "₹13"
    assert money(Decimal("13.5")) == "₹14"
    assert money(Decimal("0.125"), 2) == "₹0.13"
    assert money(0.1 + 0.2, 2) == "₹0.30"


def test_negative_amounts_carry_the_sign_first() -> None:
    assert money(Decimal("-1234567.5")) == "-₹12,34,568"
    assert money(Decimal("-5.5"), 2) == "-₹5.50"
    with override_settings(MINICRM_CURRENCY="EUR", MINICRM_LOCALE="de"):
        assert money(Decimal("-92.5"), 2) == f"-92,50{NBSP}€"


def test_no_value_is_a_dash() -> None:
    assert money(None) == "—"
    assert money(None, 2, currency="EUR") == "—"
    assert money_compact(None) == "—"
    assert money_with_original(None, None, None) == "—"


def test_another_currency_in_the_shop_locale() -> None:
    assert money(Decimal("92"), 2, currency="EUR") == "€92.00"
    assert money(Decimal("1234567"), 2, currency="USD") == "$12,34,567.00"


def test_places_never_exceed_the_currency_own() -> None:
    # The yen has no minor unit: no ¥1,234.00, whatever the page asks for.
    with override_settings(MINICRM_CURRENCY="JPY", MINICRM_LOCALE="en"):
        assert money(Decimal("1234.4"), 2) == "¥1,234"


def test_compact_amounts_for_chart_axes() -> None:
    assert money_compact(Decimal("2500000")) == "₹25L"
    assert money_compact(Decimal("25500000")) == "₹2.6Cr"
    assert money_compact(900) == "₹900"
    with override_settings(MINICRM_CURRENCY="USD", MINICRM_LOCALE="en"):
        assert money_compact(2_500_000) == "$2.5M"
        assert money_compact(2_000_000) == "$2M"


def test_the_original_beside_the_converted_amount() -> None:
    assert money_with_original(Decimal("8312.4"), Decimal("92"), "EUR") == "₹8,312.40 (€92.00)"
    # In the shop currency there is nothing to put beside it.
    assert money_with_original(Decimal("8312.4"), Decimal("8312.4"), "INR") == "₹8,312.40"


def test_the_browser_gets_the_code_and_a_bcp47_locale() -> None:
    assert money_format_options() == {"currency": "INR", "locale": "en-IN", "symbol": "₹"}
    with override_settings(MINICRM_CURRENCY="EUR", MINICRM_LOCALE="de_DE"):
        assert money_format_options() == {"currency": "EUR", "locale": "de-DE", "symbol": "€"}


def test_no_separate_symbol_setting_is_left() -> None:
    assert not hasattr(settings, "MINICRM_CURRENCY_SYMBOL")
    places = [ROOT / "minicrm", ROOT / "config", ROOT / "README.md", ROOT / "docs"]
    files = [
        path
        for place in places
        for path in ([place] if place.is_file() else place.rglob("*"))
        if path.is_file() and path.suffix in {".py", ".html", ".js", ".md"}
    ]
    assert files
    mentions = [str(path) for path in files if "MINICRM_CURRENCY_SYMBOL" in path.read_text()]
    assert mentions == []
