"""Customer upserts: by external_id or by email, tags replaced when given, unchanged rows not
written."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.utils import timezone

from ..ingestion import (
    BulkResult,
    CustomerByEmailRow,
    CustomerRow,
    RowError,
    external_id_from_email,
    rows_check_size,
    rows_validate,
)
from ..models import Customer, CustomerTag
from ..sql import (
    chunks,
    datetime_adapter,
    executemany,
    ids_by_key,
    insert_sql,
    json_adapter,
    rows_by_key,
    update_sql,
)
from .batch import CustomerKey, batch_atomic, gc_paused, with_errors
from .stats import NO_STATS, STATS_FIELDS

# The customer columns an upsert writes besides external_id (tags live in CustomerTag rows).
CUSTOMER_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "city",
    "country",
    "attributes",
    "signed_up_at",
    "marketing_consent",
)


def customers_bulk_upsert(*, rows: Sequence[Any], key: CustomerKey = "external_id") -> BulkResult:
    """Create or update up to 10,000 customers by `external_id` (or by email, `key="email"`);
    invalid rows are reported.

    `tags`, when given, replace the customer's tags (stored lower-case, one CustomerTag each).
    """
    rows_check_size(rows)
    with gc_paused():
        if key == "email":
            by_email, errors = rows_validate(rows, CustomerByEmailRow, key="email")
            return with_errors(batch_atomic(lambda: _customers_store_by_email(by_email)), errors)
        if key != "external_id":
            raise ValueError(f"Unknown customer key {key!r}")
        valid, errors = rows_validate(rows, CustomerRow)
        return with_errors(batch_atomic(lambda: _customers_store(valid)), errors)


def external_ids_by_email(emails: Iterable[str]) -> dict[str, list[str]]:
    """Every stored customer's external_id under each of these emails, oldest customer first."""
    found: dict[str, list[str]] = {}
    stored = rows_by_key(Customer, "email", sorted(set(emails)), ["external_id"])
    for email, (external_id,) in stored:
        found.setdefault(email, []).append(external_id)
    return found


def email_owner(email: str, owners: list[str], given: str | None) -> str | RowError:
    """The external_id that `email` names; a RowError (index filled in later) when ambiguous."""
    if not owners:
        return given or external_id_from_email(email)
    if len(owners) == 1:
        return owners[0]
    for preferred in (given, external_id_from_email(email)):
        if preferred in owners:
            return preferred
    return RowError(
        -1,
        "email",
        f"{len(owners)} customers have the email {email!r}; import them by external_id to say "
        "which one is meant.",
    )


def _customers_store_by_email(valid: list[tuple[int, CustomerByEmailRow]]) -> BulkResult:
    owners = external_ids_by_email(row.email for _index, row in valid)
    keyed: list[tuple[int, CustomerRow]] = []
    errors: list[RowError] = []
    for index, row in valid:
        owner = email_owner(row.email, owners.get(row.email, []), row.external_id)
        if isinstance(owner, RowError):
            errors.append(RowError(index, owner.field, owner.message))
            continue
        values = {**row.__dict__, "external_id": owner}
        fields_set = row.model_fields_set | {"external_id"}
        keyed.append((index, CustomerRow.model_construct(fields_set, **values)))
    # Two rows with different emails may still name one customer by the same given external_id.
    keys_seen: dict[str, int] = {}
    unique: list[tuple[int, CustomerRow]] = []
    for index, customer in keyed:
        earlier = keys_seen.setdefault(customer.external_id, index)
        if earlier != index:
            message = f"{customer.external_id!r} already appears in row {earlier} of this batch."
            errors.append(RowError(index, "external_id", message))
        else:
            unique.append((index, customer))
    return with_errors(_customers_store(unique), errors)


def _customers_store(valid: list[tuple[int, CustomerRow]]) -> BulkResult:
    result = BulkResult()
    now = timezone.now()
    keys = sorted(row.external_id for _index, row in valid)
    stored_by_key: dict[str, dict[str, Any]] = {}
    for chunk in chunks(keys):
        locked = Customer.objects.select_for_update().filter(external_id__in=chunk).order_by("id")
        for values in locked.values("id", "external_id", *CUSTOMER_FIELDS):
            stored_by_key[values["external_id"]] = values
    tags_by_customer = _tags_of(
        [
            stored_by_key[row.external_id]["id"]
            for _index, row in valid
            if row.external_id in stored_by_key and "tags" in row.model_fields_set
        ]
    )

    inserts: list[dict[str, Any]] = []
    new_tags: dict[str, list[str]] = {}
    updates: list[dict[str, Any]] = []
    tag_adds: list[tuple[int, str]] = []
    tag_removes: list[int] = []
    for _index, row in valid:
        given = row.model_fields_set
        stored = stored_by_key.get(row.external_id)
        if stored is None:
            values = {name: getattr(row, name) for name in CUSTOMER_FIELDS}
            if values["marketing_consent"] is None:
                values["marketing_consent"] = True
            inserts.append({"external_id": row.external_id, **values})
            if row.tags:
                new_tags[row.external_id] = row.tags
            result.created += 1
            continue
        merged = dict(stored)
        for name in CUSTOMER_FIELDS:
            value = getattr(row, name)
            if name in given and not (name == "marketing_consent" and value is None):
                merged[name] = value
        changed = merged != stored
        if "tags" in given:
            have = tags_by_customer.get(stored["id"], {})
            adds = [(stored["id"], tag) for tag in row.tags if tag not in have]
            removes = [tag_id for tag, tag_id in have.items() if tag not in row.tags]
            tag_adds += adds
            tag_removes += removes
            changed = changed or bool(adds or removes)
        if changed:
            updates.append(merged)
            result.updated += 1
        else:
            result.unchanged += 1

    params = _customer_params()
    stamp = datetime_adapter()(now)
    executemany(
        insert_sql(
            Customer, ["external_id", *CUSTOMER_FIELDS, *STATS_FIELDS, "created_at", "updated_at"]
        ),
        [
            (values["external_id"], *params(values), *NO_STATS, stamp, stamp)
            for values in sorted(inserts, key=lambda values: values["external_id"])
        ],
    )
    executemany(
        update_sql(Customer, [*CUSTOMER_FIELDS, "updated_at"]),
        [
            (*params(values), stamp, values["id"])
            for values in sorted(updates, key=lambda values: values["id"])
        ],
    )
    if new_tags:
        ids = ids_by_key(Customer, "external_id", list(new_tags))
        tag_adds += [(ids[key], tag) for key, tags in new_tags.items() for tag in tags]
    for tag_ids in chunks(sorted(tag_removes)):
        CustomerTag.objects.filter(id__in=tag_ids).delete()
    executemany(insert_sql(CustomerTag, ["customer", "name"]), sorted(tag_adds))
    return result


def _customer_params() -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function turning a customer's CUSTOMER_FIELDS values into statement parameters."""
    adapt = datetime_adapter()
    as_json = json_adapter(Customer, "attributes")

    def params(values: dict[str, Any]) -> tuple[Any, ...]:
        return (
            *(values[name] for name in CUSTOMER_FIELDS[:6]),
            as_json(values["attributes"]),
            adapt(values["signed_up_at"]),
            values["marketing_consent"],
        )

    return params


def _tags_of(customer_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each customer's tags as {name: tag row id}."""
    tags: dict[int, dict[str, int]] = {}
    for chunk in chunks(customer_ids):
        rows = CustomerTag.objects.filter(customer_id__in=chunk)
        for tag_id, customer_id, name in rows.values_list("id", "customer_id", "name"):
            tags.setdefault(customer_id, {})[name] = tag_id
    return tags
