"""The messaging vendor's receipts: a `sent` delivery becomes `delivered` or `failed`.

One batch is applied in one transaction with a fixed number of statements whatever its size:
one SELECT ... FOR UPDATE of the deliveries its vendor ids name (in primary-key order, so two
batches lock in the same order), one UPDATE per distinct outcome, and one counters UPDATE per
campaign. Each receipt is counted once:

- `applied`: it changed the delivery. A `sent` delivery takes the receipt's status; a delivered
  or failed one takes the other status only when the receipt is *later* (its `at`) than the one
  it holds (a bounce after a delivery, a retry that got through after a failure).
- `duplicate`: the delivery already has that status (a vendor re-posting, or a repeat inside the
  batch). Nothing changes, not even `receipt_at`: the first receipt's time is kept.
- `stale`: it says the other final status but is not later than the one applied (an equal time is
  stale too: the first one applied wins). A final status never goes back to `sent`.
- `unknown`: no delivery carries that vendor id (empty, or one we have not recorded yet: the
  vendor may post before our worker has written the vendor id down, so it should try again
  later), or the delivery is not waiting for a receipt (pending, skipped, held out).

A receipt's time is its `at` (a time without a zone is UTC), else the moment the batch arrived.
Receipts of one vendor id inside a batch are taken in the batch's order. A failure's reason is
kept in `Delivery.error` (cut to the column's length); a later `delivered` clears it.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from minicrm.core.db_retry import atomic_with_retry
from minicrm.core.errors import InvalidInputError
from minicrm.core.limits import MAX_BATCH_ROWS

from .counters import counters_move
from .models import Delivery

# A batch is one transaction: as large as the other bulk writes (MAX_BATCH_ROWS, about 1-2 s of
# writing on SQLite). The API refuses a larger one with 422.
MAX_RECEIPTS_PER_BATCH = MAX_BATCH_ROWS
# The statuses a receipt can give, and the ones a delivery must have to take one.
RECEIPT_STATUSES = (Delivery.Status.DELIVERED, Delivery.Status.FAILED)
_AWAITING_OR_FINAL = (Delivery.Status.SENT, *RECEIPT_STATUSES)
_VENDOR_ID_CHARS = Delivery._meta.get_field("vendor_id").max_length or 100
_ERROR_CHARS = Delivery._meta.get_field("error").max_length or 500
# More distinct (status, time, reason) outcomes than this in one batch (a vendor stamping every
# receipt with its own time) are written with one CASE ... WHEN update per chunk instead.
MAX_GROUPED_UPDATES = 50
CASE_UPDATE_CHUNK = 500
OUTCOMES = ("applied", "duplicate", "unknown", "stale")


@dataclass(frozen=True)
class Receipt:
    vendor_id: str
    status: str  # one of RECEIPT_STATUSES
    reason: str = ""
    at: datetime | None = None


@dataclass
class _DeliveryState:
    """A locked delivery as the batch sees it: where it started, and where it is now."""

    pk: int
    campaign_id: int
    initial_status: str
    status: str
    receipt_at: datetime | None
    error: str = ""
    # Whether a receipt was applied (the status may end where it started: failed, then
    # delivered, then failed again, each later than the one before).
    dirty: bool = False


def _receipt_time(receipt: Receipt, arrived_at: datetime) -> datetime:
    if receipt.at is None:
        return arrived_at
    if timezone.is_naive(receipt.at):
        return receipt.at.replace(tzinfo=UTC)
    return receipt.at


def _outcome(state: _DeliveryState | None, receipt: Receipt, at: datetime) -> str:
    """Classify one receipt against the delivery's current state (and move the state)."""
    if state is None or state.status not in _AWAITING_OR_FINAL:
        return "unknown"
    if state.status == receipt.status:
        return "duplicate"
    later = state.receipt_at is None or at > state.receipt_at
    if state.status != Delivery.Status.SENT and not later:
        return "stale"
    state.status = receipt.status
    state.receipt_at = at
    state.error = receipt.reason[:_ERROR_CHARS] if receipt.status == Delivery.Status.FAILED else ""
    state.dirty = True
    return "applied"


def _lock_deliveries(vendor_ids: set[str]) -> dict[str, list[_DeliveryState]]:
    """The deliveries carrying these vendor ids, locked in primary-key order."""
    rows = (
        Delivery.objects.select_for_update()
        .filter(vendor_id__in=sorted(vendor_ids))
        .order_by("pk")
        .values_list("pk", "vendor_id", "campaign_id", "status", "receipt_at", "error")
    )
    found: dict[str, list[_DeliveryState]] = defaultdict(list)
    for pk, vendor_id, campaign_id, status, receipt_at, error in rows:
        state = _DeliveryState(pk, campaign_id, status, status, receipt_at, error)
        found[str(vendor_id)].append(state)
    return found


def _write(changed: Sequence[_DeliveryState]) -> None:
    """One UPDATE per distinct outcome; per-row CASE updates when outcomes are too many."""
    groups: dict[tuple[str, datetime | None, str], list[int]] = defaultdict(list)
    for state in changed:
        groups[(state.status, state.receipt_at, state.error)].append(state.pk)
    if len(groups) <= MAX_GROUPED_UPDATES:
        for (status, receipt_at, error), pks in groups.items():
            Delivery.objects.filter(pk__in=pks).update(
                status=status, receipt_at=receipt_at, error=error
            )
        return
    rows = [
        Delivery(pk=state.pk, status=state.status, receipt_at=state.receipt_at, error=state.error)
        for state in changed
    ]
    Delivery.objects.bulk_update(
        rows, ["status", "receipt_at", "error"], batch_size=CASE_UPDATE_CHUNK
    )


def _move_counters(changed: Iterable[_DeliveryState]) -> None:
    moves: dict[int, Counter[tuple[str, str]]] = defaultdict(Counter)
    for state in changed:
        moves[state.campaign_id][(state.initial_status, state.status)] += 1
    for campaign_id in sorted(moves):  # campaigns in a stable order, as the deliveries
        counters_move(campaign_id, moves[campaign_id])


def receipts_apply(receipts: Sequence[Receipt]) -> dict[str, int]:
    """Apply a batch of receipts in one transaction; how many were applied, duplicate, unknown
    and stale (they add up to the number of receipts)."""
    if len(receipts) > MAX_RECEIPTS_PER_BATCH:
        raise InvalidInputError(
            f"At most {MAX_RECEIPTS_PER_BATCH:,} receipts in one batch.", field="receipts"
        )
    arrived_at = timezone.now()

    def apply() -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        # A vendor id longer than the column was never stored: unknown without asking.
        wanted = {r.vendor_id for r in receipts if 0 < len(r.vendor_id) <= _VENDOR_ID_CHARS}
        found = _lock_deliveries(wanted) if wanted else {}
        for receipt in receipts:
            states: list[_DeliveryState | None] = [*found.get(receipt.vendor_id, ())] or [None]
            at = _receipt_time(receipt, arrived_at)
            # Vendor ids are unique by contract; should two deliveries share one, the receipt
            # applies to each and is counted once, by the first.
            outcomes = [_outcome(state, receipt, at) for state in states]
            counts[outcomes[0]] += 1
        changed = [state for states in found.values() for state in states if state.dirty]
        if changed:
            _write(changed)
            _move_counters(changed)
        return counts

    return atomic_with_retry(apply)
