"""factory_boy factories shared by the tests."""

from datetime import UTC, timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from minicrm.accounts.models import Role, User
from minicrm.customers.models import Customer, Order
from minicrm.customers.services import orders_bulk_upsert

DEFAULT_PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    role = Role.MARKETER
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()


class AdminFactory(UserFactory):
    role = Role.ADMIN
    is_staff = True
    is_superuser = True


class CustomerFactory(factory.django.DjangoModelFactory):
    """A customer with no orders; stats stay zero unless orders go through the services."""

    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"cust-{n:06d}")
    email = factory.LazyAttribute(lambda c: f"{c.external_id}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    phone = factory.Faker("numerify", text="+91 9#########")
    city = factory.Faker("random_element", elements=["Mumbai", "Delhi", "Pune", "Chennai"])
    country = "India"
    signed_up_at = factory.Faker("date_time_between", start_date="-2y", tzinfo=UTC)


class OrderFactory(factory.django.DjangoModelFactory):
    """An order written straight to the table: stats do not follow, so tests that need exact
    stats create orders through `orders_bulk_upsert` (or call `customer_stats_recompute`)."""

    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"ord-{n:07d}")
    customer = factory.SubFactory(CustomerFactory)
    amount = Decimal("499.00")
    currency = "INR"
    status = Order.Status.COMPLETED
    ordered_at = factory.Faker("date_time_between", start_date="-1y", tzinfo=UTC)


def orders_on_recent_days(customer_external_id: str, amounts: list[str]) -> None:
    """One completed order per amount for the customer, the last one yesterday, the one before
    the day before, and so on (ids "<customer>-1", "<customer>-2", ...)."""
    now = timezone.now()
    result = orders_bulk_upsert(
        rows=[
            {
                "external_id": f"{customer_external_id}-{number}",
                "customer_external_id": customer_external_id,
                "amount": amount,
                "ordered_at": (now - timedelta(days=len(amounts) - number + 1)).isoformat(),
            }
            for number, amount in enumerate(amounts, start=1)
        ]
    )
    assert result.errors == [], result.errors
