"""Realistic, reproducible demo customers and orders, generated fast enough for a million rows.

Indian and international customers signed up over about three years, tags, order amounts with a
long tail (lognormal), more orders from October to December, about 15% of customers who never
ordered, a share of lapsed ones, and some cancelled or refunded orders. Rows are written with
`executemany` in one transaction per chunk, and each customer's stats are computed exactly while
their orders are generated, so the result is the same as going through the ingestion services.
The same seed on the same day gives the same data (dates are anchored to today's midnight UTC).
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max

from .models import Customer, CustomerTag, Order
from .services.customers import CUSTOMER_FIELDS
from .services.orders import ORDER_INSERT_FIELDS
from .services.stats import STATS_FIELDS
from .sql import datetime_adapter, executemany, insert_sql, json_adapter

CHUNK_CUSTOMERS = 2000
NEVER_ORDERED_SHARE = 0.15
LAPSED_SHARE = 0.2  # of the customers who ordered: nothing in the last LAPSED_DAYS
LAPSED_DAYS = 180
HISTORY_DAYS = 3 * 365
# Relative order volume by month (January first): the festive season and year-end sales.
MONTH_WEIGHTS = (1.0, 0.9, 1.0, 0.95, 1.0, 0.9, 0.95, 1.05, 1.1, 1.6, 1.8, 1.7)

# fmt: off
INDIAN_FIRST = [
    "Aarav", "Vivaan", "Aditya", "Vihaan", "Arjun", "Sai", "Reyansh", "Ayaan", "Krishna",
    "Ishaan", "Rohan", "Kabir", "Dev", "Rahul", "Ananya", "Diya", "Aadhya", "Saanvi", "Myra",
    "Isha", "Priya", "Kavya", "Riya", "Meera", "Pooja", "Sneha", "Lakshmi", "Nisha", "Tara",
]
INDIAN_LAST = [
    "Sharma", "Verma", "Gupta", "Iyer", "Nair", "Reddy", "Patel", "Shah", "Mehta", "Rao",
    "Singh", "Kumar", "Das", "Bose", "Chatterjee", "Menon", "Pillai", "Joshi", "Kulkarni",
    "Desai", "Agarwal", "Banerjee", "Mukherjee", "Naidu", "Khan", "Fernandes", "Kapoor",
]
WORLD_FIRST = [
    "James", "Olivia", "Liam", "Emma", "Noah", "Sofia", "Lucas", "Mia", "Omar", "Layla",
    "Chen", "Yuki", "Hana", "Mateo",
]
WORLD_LAST = [
    "Smith", "Johnson", "Brown", "Garcia", "Martin", "Muller", "Rossi", "Tanaka", "Kim", "Ali",
    "Silva", "Wilson",
]
# fmt: on
INDIAN_CITIES = (
    ("Mumbai", 14),
    ("Delhi", 13),
    ("Bengaluru", 12),
    ("Hyderabad", 8),
    ("Chennai", 8),
    ("Pune", 7),
    ("Kolkata", 6),
    ("Ahmedabad", 5),
    ("Jaipur", 4),
    ("Lucknow", 3),
    ("Kochi", 3),
    ("Chandigarh", 3),
    ("Indore", 2),
    ("Surat", 2),
)
WORLD_CITIES = (
    ("Dubai", "United Arab Emirates", 5),
    ("London", "United Kingdom", 4),
    ("Singapore", "Singapore", 4),
    ("New York", "United States", 3),
    ("Toronto", "Canada", 3),
    ("Sydney", "Australia", 2),
    ("Kathmandu", "Nepal", 2),
    ("Colombo", "Sri Lanka", 2),
    ("Berlin", "Germany", 1),
)
INDIA_SHARE = 0.8
CHANNELS = ("instagram", "google", "referral", "organic", "marketplace")
CATEGORIES = ("apparel", "footwear", "beauty", "home", "accessories")
VIP_SPEND = Decimal("50000")


@dataclass(frozen=True)
class DemoCounts:
    customers: int
    orders: int
    tags: int


def _weighted(rng: random.Random, choices: list[Any], weights: list[float]) -> Any:
    return rng.choices(choices, weights=weights)[0]


@dataclass
class _Plan:
    """What the generator draws once: the order count of every customer, summing to `orders`."""

    counts: list[int]

    @classmethod
    def draw(cls, rng: random.Random, *, customers: int, orders: int) -> "_Plan":
        # Buyers' appetites are lognormal, so a few customers place many orders (the long tail).
        weights = [
            0.0 if rng.random() < NEVER_ORDERED_SHARE else rng.lognormvariate(0, 1.0)
            for _ in range(customers)
        ]
        total = sum(weights)
        if total == 0 and orders:
            weights[0] = total = 1.0
        counts = [math.floor(orders * weight / total) if total else 0 for weight in weights]
        buyers = [index for index, weight in enumerate(weights) if weight]
        rng.shuffle(buyers)
        for position in range(orders - sum(counts)):
            counts[buyers[position % len(buyers)]] += 1
        return cls(counts)


def demo_seed(
    *,
    customers: int,
    orders: int,
    seed: int = 42,
    on_progress: Callable[[int], object] | None = None,
) -> DemoCounts:
    """Add `customers` customers with `orders` orders in total; return what was written.

    `on_progress` receives the number of customers written after each chunk.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    plan = _Plan.draw(rng, customers=customers, orders=orders)
    first_id = (Customer.objects.aggregate(last=Max("id"))["last"] or 0) + 1
    writer = _Writer(now=now)
    written = DemoCounts(0, 0, 0)
    for start in range(0, customers, CHUNK_CUSTOMERS):
        stop = min(start + CHUNK_CUSTOMERS, customers)
        with transaction.atomic():
            chunk = writer.write(rng, first_id=first_id + start, counts=plan.counts[start:stop])
        written = DemoCounts(
            written.customers + chunk.customers,
            written.orders + chunk.orders,
            written.tags + chunk.tags,
        )
        if on_progress:
            on_progress(stop - start)
    # Customer ids were given explicitly; PostgreSQL's sequence has to be told.
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Customer]):
            cursor.execute(sql)
    return written


class _Clock:
    """Times as whole seconds before `now`, turned into stored values with a per-day cache.

    Formatting millions of datetimes is most of the generator's time; a day's date part and
    month are computed once and the time of day is appended.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.adapt = datetime_adapter()
        # SQLite and MariaDB store naive text in the connection's zone: UTC unless configured.
        self.as_text = connection.vendor in ("sqlite", "mysql") and self.adapt(now) == str(
            now.replace(tzinfo=None)
        )
        self.days: dict[int, tuple[datetime, str, int]] = {}

    def _day(self, seconds: int) -> tuple[datetime, str, int]:
        day = seconds // 86400
        cached = self.days.get(day)
        if cached is None:
            start = self.now + timedelta(days=day)
            cached = self.days[day] = (start, start.date().isoformat(), start.month)
        return cached

    def month(self, seconds: int) -> int:
        return self._day(seconds)[2]

    def value(self, seconds: int) -> Any:
        start, date_text, _month = self._day(seconds)
        rest = seconds % 86400
        if self.as_text:
            return f"{date_text} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
        return self.adapt(start + timedelta(seconds=rest))


def _money_text(paise: int) -> Any:
    # SQLite stores the text form anyway; the servers want a Decimal for their NUMERIC columns.
    return f"{paise // 100}.{paise % 100:02d}"


def _money_decimal(paise: int) -> Any:
    return Decimal(paise).scaleb(-2)


class _Writer:
    """Generates one chunk of customers with their orders and writes it."""

    def __init__(self, *, now: datetime) -> None:
        self.clock = _Clock(now)
        self.as_json = json_adapter(Customer, "attributes")
        self.stamp = datetime_adapter()(now)
        self.money = _money_text if connection.vendor == "sqlite" else _money_decimal
        self.month_ceiling = max(MONTH_WEIGHTS)
        self.customer_sql = insert_sql(
            Customer,
            ["id", "external_id", *CUSTOMER_FIELDS, *STATS_FIELDS, "created_at", "updated_at"],
        )
        self.order_sql = insert_sql(Order, ORDER_INSERT_FIELDS)
        self.tag_sql = insert_sql(CustomerTag, ["customer", "name"])
        self.city_names = [city for city, _weight in INDIAN_CITIES]
        self.city_weights = [float(weight) for _city, weight in INDIAN_CITIES]
        self.world = [(city, country) for city, country, _weight in WORLD_CITIES]
        self.world_weights = [float(weight) for _city, _country, weight in WORLD_CITIES]

    def write(self, rng: random.Random, *, first_id: int, counts: list[int]) -> DemoCounts:
        customer_rows: list[tuple[Any, ...]] = []
        order_rows: list[tuple[Any, ...]] = []
        tag_rows: list[tuple[int, str]] = []
        for offset, order_count in enumerate(counts):
            customer_id = first_id + offset
            customer, orders, tags = self._customer(rng, customer_id, order_count)
            customer_rows.append(customer)
            order_rows += orders
            tag_rows += [(customer_id, tag) for tag in tags]
        executemany(self.customer_sql, customer_rows)
        executemany(self.order_sql, order_rows)
        executemany(self.tag_sql, tag_rows)
        return DemoCounts(len(customer_rows), len(order_rows), len(tag_rows))

    def _customer(
        self, rng: random.Random, customer_id: int, order_count: int
    ) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[str]]:
        if rng.random() < INDIA_SHARE:
            first, last = rng.choice(INDIAN_FIRST), rng.choice(INDIAN_LAST)
            city = _weighted(rng, self.city_names, self.city_weights)
            country = "India"
            phone = f"+91 9{rng.randrange(10**9):09d}"
        else:
            first, last = rng.choice(WORLD_FIRST), rng.choice(WORLD_LAST)
            city, country = _weighted(rng, self.world, self.world_weights)
            phone = f"+{rng.randrange(1, 99)} {rng.randrange(10**9):09d}"
        # Sign-ups grow over time: more recent days are likelier (square root of a uniform).
        signed_up = -int(HISTORY_DAYS * 86400 * (1 - math.sqrt(rng.random())))
        consent = rng.random() < 0.8
        lapsed = rng.random() < LAPSED_SHARE
        orders, stats = self._orders(rng, customer_id, order_count, signed_up, lapsed=lapsed)
        total_paise, completed, first_at, last_at = stats
        tags = self._tags(rng, consent=consent, order_count=order_count, spend=total_paise)
        attributes = {"channel": rng.choice(CHANNELS), "favourite": rng.choice(CATEGORIES)}
        customer = (
            customer_id,
            f"CUST-{customer_id:07d}",
            f"{first}.{last}{customer_id}@example.com".lower(),
            first,
            last,
            phone,
            city,
            country,
            self.as_json(attributes),
            self.clock.value(signed_up),
            consent,
            self.money(total_paise),
            completed,
            None if first_at is None else self.clock.value(first_at),
            None if last_at is None else self.clock.value(last_at),
            self.clock.value(signed_up),
            self.stamp,
        )
        return customer, orders, tags

    def _orders(
        self,
        rng: random.Random,
        customer_id: int,
        count: int,
        signed_up: int,
        *,
        lapsed: bool,
    ) -> tuple[list[tuple[Any, ...]], tuple[int, int, int | None, int | None]]:
        """The customer's orders, and their stats as (paise, count, first, last) in seconds."""
        end = -LAPSED_DAYS * 86400 if lapsed else 0
        span = max(end - signed_up, 3600)
        clock, money, stamp = self.clock, self.money, self.stamp
        # Demo orders are sold in the shop currency: nothing to convert, no rates needed.
        currency = settings.MINICRM_CURRENCY
        rows = []
        total_paise = completed = 0
        first_at: int | None = None
        last_at: int | None = None
        # A customer spends on a similar scale each time: their own median, then the long tail.
        log_median = rng.gauss(7.3, 0.6) + math.log(100)
        for number in range(count):
            ordered_at = self._moment(rng, signed_up, span)
            paise = max(4900, min(50_000_000, int(math.exp(rng.gauss(log_median, 0.7)))))
            roll = rng.random()
            status = "completed" if roll < 0.92 else "cancelled" if roll < 0.97 else "refunded"
            if status == "completed":
                total_paise += paise
                completed += 1
                if first_at is None or ordered_at < first_at:
                    first_at = ordered_at
                if last_at is None or ordered_at > last_at:
                    last_at = ordered_at
            rows.append(
                (
                    f"ORD-{customer_id:07d}-{number:04d}",
                    customer_id,
                    money(paise),
                    money(paise),
                    currency,
                    status,
                    clock.value(ordered_at),
                    stamp,
                    stamp,
                )
            )
        return rows, (total_paise, completed, first_at, last_at)

    def _moment(self, rng: random.Random, start: int, span: int) -> int:
        # Rejection sampling on the month weights gives the festive-season peak.
        while True:
            moment = start + int(rng.random() * span)
            if rng.random() * self.month_ceiling <= MONTH_WEIGHTS[self.clock.month(moment) - 1]:
                return moment

    def _tags(
        self, rng: random.Random, *, consent: bool, order_count: int, spend: int
    ) -> list[str]:
        tags = []
        if spend >= VIP_SPEND * 100:
            tags.append("vip")
        if consent and rng.random() < 0.5:
            tags.append("newsletter")
        if order_count >= 15 and rng.random() < 0.3:
            tags.append("wholesale")
        if rng.random() < 0.3:
            tags.append("app-user")
        if rng.random() < 0.05:
            tags.append("student")
        return tags
