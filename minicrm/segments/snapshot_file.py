"""The snapshot's generations on disk: one columnar copy per machine, shared by every process.

A generation is a folder of Arrow IPC files (`customers`, `tags`, `recent_orders`) and a
manifest (watermark, top order id, the text codes and tag bits its rows were written with, row
counts). `current.json` names the current one and is replaced by an atomic rename, so a reader
sees the old generation or the new one, never half of one. Processes memory-map the files: the
pages live once in the OS page cache, not in each process. One process at a time writes a
generation (a non-blocking `flock` on `build.lock`); the others keep using what they have.
"""

import fcntl
import json
import os
import shutil
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

__all__ = [
    "TABLES",
    "Manifest",
    "build_lock",
    "build_running",
    "generation_applied",
    "generation_applied_write",
    "generation_current",
    "generation_open",
    "generation_publish",
    "generation_sort_customers",
    "generation_start",
    "generation_write",
]

TABLES = ("customers", "tags", "recent_orders")
POINTER = "current.json"
LOCK = "build.lock"


@dataclass
class Manifest:
    """What a generation holds and how its values were coded (see `snapshot`)."""

    name: str
    watermark: str  # ISO instant: every customer change before it is in the files
    top_order_id: int  # every order up to this id is in `recent_orders` (if it belongs there)
    orders_since: str  # ISO instant: `recent_orders` holds every completed order from it on
    codes: dict[str, dict[str, int]]
    tag_bits: dict[str, int]
    tag_names: list[str]
    max_order_count: int
    rows: dict[str, int] = field(default_factory=dict)
    created: float = 0.0  # time.time() when published
    # Whether `customers` is stored biggest spenders first (see `generation_sort_customers`).
    customers_by_spend: bool = False

    @property
    def watermark_at(self) -> datetime:
        return datetime.fromisoformat(self.watermark)

    @property
    def orders_since_at(self) -> datetime:
        return datetime.fromisoformat(self.orders_since)


def generation_current(directory: Path) -> Manifest | None:
    """The current generation's manifest, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((directory / POINTER).read_text(encoding="utf-8"))
        return Manifest(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):  # a damaged pointer counts as none: it is rebuilt
        return None


def generation_open(directory: Path, manifest: Manifest) -> dict[str, pa.Table]:
    """The generation's tables, memory-mapped (zero-copy); raises if a file is missing or
    does not hold the rows the manifest names."""
    tables: dict[str, pa.Table] = {}
    for name in TABLES:
        with pa.memory_map(str(directory / manifest.name / f"{name}.arrow")) as source:
            table = ipc.open_file(source).read_all()
        if table.num_rows != manifest.rows.get(name):
            raise ValueError(
                f"Snapshot file {manifest.name}/{name} holds {table.num_rows} rows, "
                f"its manifest says {manifest.rows.get(name)}"
            )
        tables[name] = table
    return tables


def generation_applied_write(folder: Path, applied: dict[int, datetime]) -> None:
    """Record the `updated_at` of each customer the generation holds from the watermark's
    overlap window, so a process opening it does not read them again into its delta."""
    text = json.dumps({str(pk): moment.isoformat() for pk, moment in applied.items()})
    (folder / "applied.json").write_text(text, encoding="utf-8")


def generation_applied(directory: Path, manifest: Manifest) -> dict[int, datetime]:
    """What `generation_applied_write` recorded for the generation (empty if nothing)."""
    try:
        data = json.loads((directory / manifest.name / "applied.json").read_text("utf-8"))
    except FileNotFoundError:
        return {}
    return {int(pk): datetime.fromisoformat(moment) for pk, moment in data.items()}


def generation_start(directory: Path) -> Path:
    """A new, empty folder for a generation being written (not current until published)."""
    directory.mkdir(parents=True, exist_ok=True)
    folder = directory / f"gen-{clock.time_ns():020d}-{os.getpid()}"
    folder.mkdir()
    return folder


def generation_write(folder: Path, name: str, reader: Any) -> int:
    """Write a table from an Arrow record batch reader; the rows written."""
    rows = 0
    with (
        pa.OSFile(str(folder / f"{name}.arrow"), "wb") as sink,
        ipc.new_file(sink, reader.schema) as writer,
    ):
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def generation_sort_customers(folder: Path, *, batch_rows: int) -> None:
    """Store the written `customers` biggest spenders first (ties: highest id first), the order
    of a segment's sample, so the sample's top rows are the first that match (no sort per
    preview). Sorts only the two key columns and copies the rows in that order a batch at a
    time: memory stays tens of MB at a million customers."""
    written = folder / "customers.arrow"
    with pa.memory_map(str(written)) as source:
        table = ipc.open_file(source).read_all()
    order = pc.sort_indices(
        pa.table({"cents": table["cents"], "id": table["id"]}),
        sort_keys=[("cents", "descending"), ("id", "descending")],
    )
    sorted_path = folder / "customers.sorted.arrow"
    with (
        pa.OSFile(str(sorted_path), "wb") as sink,
        ipc.new_file(sink, table.schema) as writer,
    ):
        for start in range(0, table.num_rows, batch_rows):
            writer.write_table(table.take(order[start : start + batch_rows]))
    os.replace(sorted_path, written)


def generation_publish(directory: Path, folder: Path, manifest: Manifest) -> None:
    """Make the written folder the current generation (atomic rename of the pointer), then
    delete all but it and the previous one (processes that still map an older one keep
    reading it: an unlinked file stays valid while mapped)."""
    manifest.created = clock.time()
    (folder / "manifest.json").write_text(json.dumps(asdict(manifest)), encoding="utf-8")
    temporary = directory / f".{POINTER}.{os.getpid()}"
    temporary.write_text(json.dumps(asdict(manifest)), encoding="utf-8")
    os.replace(temporary, directory / POINTER)
    generations = sorted(path for path in directory.glob("gen-*") if path.is_dir())
    for old in generations[:-2]:
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def build_lock(directory: Path) -> Iterator[bool]:
    """Whether this caller got the right to write a generation (never waits for it)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_running(directory: Path) -> bool:
    """Whether some process on this machine is writing a generation now."""
    try:
        with (directory / LOCK).open("r") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False
