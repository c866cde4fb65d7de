"""Writes of shopper events: checking a widget batch, keeping it until it is written, writing it, pruning.

Intake never waits for the database. An accepted batch is appended to the spool (journal files on local disk
under EVENTS_SPOOL_DIR, one write per batch; or a Redis list when EVENTS_SPOOL_URL is set) and a drain moves
spooled batches into ShopperEvent in bulk, idempotently by (store, event_id): a thread of each web process every
EVENTS_DRAIN_INTERVAL_SECONDS (EVENTS_DRAIN_IN_PROCESS; off: a Celery task kicked by intake), and the
`recommendations.drain_events` beat task every minute for journals left by processes that died. While the
database is down a drain leaves the spool as it is and the next one writes it; when the spool itself cannot be
written, intake writes the batch to the database directly, and only when both fail is the batch refused (503),
so an event answered 204 is never lost.
"""

import fcntl
import functools
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final

import redis
from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections

from bitrecs_site.db import delete_in_batches
from bitrecs_site.json_intake import JsonIntakeError, parse_json
from merchants.exceptions import InvalidRequest, MerchantError
from merchants.models import Store
from recommendations.models import (
    EVENT_ID_MAX_LENGTH,
    REC_ID_MAX_LENGTH,
    SESSION_ID_MAX_LENGTH,
    Arm,
    EventType,
    NetworkAnswer,
    Placement,
    PlacementSettings,
    ShopperEvent,
    Source,
)
from recommendations.selectors import SERVING_STATUSES, rec_id_source

logger = logging.getLogger(__name__)

MAX_EVENTS: Final = 50
MAX_BATCH_BYTES: Final = 64 * 1024
SKU_MAX_LENGTH: Final = 255
SITE_KEY_MAX_LENGTH: Final = 64
# The shopper's clock is kept for ordering within a session, clamped to this far before arrival.
MAX_EVENT_AGE: Final = timedelta(days=7)
# Spooled batches written per drain step, and how long one drain may run (below the drain lock's lifetime).
DRAIN_STEP: Final = 200
DRAIN_MAX_SECONDS: Final = 60.0
DRAIN_LOCK_SECONDS: Final = 300

_SITE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EVENT_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{EVENT_ID_MAX_LENGTH}}}")
_REC_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{REC_ID_MAX_LENGTH}}}")
_SESSION_ID = re.compile(rf"[A-Za-z0-9_-]{{8,{SESSION_ID_MAX_LENGTH}}}")
_TYPES = frozenset(EventType.values)
_PLACEMENTS = frozenset(Placement.values)
_ARMS = frozenset(Arm.values)


class EventsUnavailable(MerchantError):
    """Neither the spool nor the database took the batch: the widget may send it again later."""

    status_code = 503
    code = "events_unavailable"


@dataclass(frozen=True)
class EventBatch:
    """A checked batch: the site key and its events as plain dicts with the keys of ShopperEvent's intake."""

    site_key: str
    events: tuple[dict[str, Any], ...]


# --- Checking a batch ---------------------------------------------------------------------------------------


def parse_event_batch(*, body: bytes) -> EventBatch:
    """Check a POST /api/v1/events body; raises InvalidRequest (400) with a message naming the offending field."""
    if len(body) > MAX_BATCH_BYTES:
        raise InvalidRequest(f"A batch is at most {MAX_BATCH_BYTES} bytes.")  # the view answers 413 before this
    try:
        data = parse_json(body, max_bytes=MAX_BATCH_BYTES)  # the one intake normaliser: NUL, NaN, depth, UTF-8
    except JsonIntakeError as exc:
        raise InvalidRequest(exc.message) from exc
    if not isinstance(data, dict):
        raise InvalidRequest('The body must be a JSON object: {"site_key": "...", "events": [...]}.')
    site_key = data.get("site_key")
    if not isinstance(site_key, str) or not _SITE_KEY.fullmatch(site_key):
        raise InvalidRequest("site_key: the store's site key (letters, digits, - and _, at most 64) is required.")
    events = data.get("events")
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        raise InvalidRequest(f"events: a list of 1 to {MAX_EVENTS} events is required.")
    checked: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(events):
        event = _check_event(raw, f"events[{index}]")
        checked.setdefault(event["event_id"], event)  # a repeated id in one batch is one event
    return EventBatch(site_key=site_key, events=tuple(checked.values()))


def _check_event(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}: each event must be a JSON object.")
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise InvalidRequest(
            f"{where}.event_id: a unique id per event (letters, digits, . _ : -, at most {EVENT_ID_MAX_LENGTH}) "
            "is required."
        )
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:  # a list or object is unhashable: no set lookup
        raise InvalidRequest(f"{where}.type: must be one of {', '.join(EventType.values)}.")
    sku = raw.get("sku")
    if not isinstance(sku, str) or not sku.strip() or len(sku) > SKU_MAX_LENGTH or not _clean_text(sku):
        raise InvalidRequest(
            f"{where}.sku: the product's SKU (1 to {SKU_MAX_LENGTH} printable characters) is required."
        )
    return {
        "event_id": event_id,
        "type": kind,
        "ts": _check_ts(raw.get("ts"), where),
        "sku": sku.strip(),
        "rec_id": _optional(raw, "rec_id", where, _REC_ID, "the rec_id of the card (letters, digits, - and _)"),
        "placement": _optional_choice(raw, "placement", where, _PLACEMENTS),
        "arm": _optional_choice(raw, "arm", where, _ARMS),
        "session_id": _optional(
            raw, "session_id", where, _SESSION_ID, f"a random id of 8 to {SESSION_ID_MAX_LENGTH} letters/digits/-/_"
        ),
    }


# Control characters (NUL included: PostgreSQL refuses it) and lone surrogates (not encodable as UTF-8).
_UNCLEAN = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _clean_text(text: str) -> bool:
    return _UNCLEAN.search(text) is None


def _check_ts(value: Any, where: str) -> float:
    """Seconds since the epoch from milliseconds (Date.now()) or an ISO 8601 time with an offset."""
    message = f"{where}.ts: the time of the event, as milliseconds since 1970 (Date.now()) or ISO 8601, is required."
    if isinstance(value, bool):
        raise InvalidRequest(message)
    if isinstance(value, int | float):
        seconds = float(value) / 1000
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidRequest(message) from exc
        if moment.tzinfo is None:
            raise InvalidRequest(f"{where}.ts: an ISO 8601 time needs its offset (Z or +hh:mm).")
        seconds = moment.timestamp()
    else:
        raise InvalidRequest(message)
    if not 946_684_800 <= seconds <= 4_102_444_800:  # 2000-01-01 .. 2100-01-01
        raise InvalidRequest(f"{where}.ts: {value!r} is not a time between 2000 and 2100 (send milliseconds).")
    return seconds


def _optional(raw: dict[str, Any], key: str, where: str, shape: re.Pattern[str], what: str) -> str:
    value = raw.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise InvalidRequest(f"{where}.{key}: {what}, or leave it out.")
    return value


def _optional_choice(raw: dict[str, Any], key: str, where: str, choices: frozenset[str]) -> str:
    value = raw.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or value not in choices:
        raise InvalidRequest(f"{where}.{key}: must be one of {', '.join(sorted(choices))}, or leave it out.")
    return str(value)


# --- Accepting a batch: the spool ----------------------------------------------------------------------------
#
# A spool record is a header line "<body length> <store id or -> <received, epoch seconds>\n" followed by the
# batch's body exactly as it was checked; the drain checks it again (the same function) before writing it.


def accept_event_batch(*, batch: EventBatch, body: bytes, store_id: int | None) -> None:
    """Keep a checked batch until it is written (spool first, the database when the spool fails); never loses it.

    `store_id` is None when the store could not be looked up (database down): the drain resolves the site key.
    Raises EventsUnavailable when neither the spool nor the database took the batch.
    """
    received = time.time()
    header = f"{len(body)} {'-' if store_id is None else store_id} {received:.3f}\n".encode()
    try:
        _spool().push(header + body)
    except (OSError, redis.RedisError) as exc:
        logger.warning("events.spool_failed", extra={"error": str(exc)})
        record = {"k": batch.site_key, "s": store_id, "r": received, "e": list(batch.events)}
        try:
            write_event_records(records=[record])
        except (DatabaseError, InterfaceError) as db_exc:
            logger.error("events.refused", extra={"site_key": batch.site_key, "error": str(db_exc)})
            raise EventsUnavailable("Events cannot be stored right now; send them again later.") from db_exc
        return
    _schedule_drain()


def _read_records(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Parse spool records; returns them and how many bytes they took (an incomplete tail is left)."""
    records: list[dict[str, Any]] = []
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:
            break
        try:
            length, store, received = data[offset:end].split(b" ")
            size = int(length)
        except ValueError:
            logger.error("events.spool_record_unreadable", extra={"offset": offset})
            return records, len(data)  # nothing after a broken header can be trusted to line up
        if end + 1 + size > len(data):
            break
        body = data[end + 1 : end + 1 + size]
        offset = end + 1 + size
        try:
            batch = parse_event_batch(body=body)
        except InvalidRequest:
            logger.error("events.spool_record_invalid", extra={"offset": offset})
            continue
        records.append(
            {
                "k": batch.site_key,
                "s": None if store == b"-" else int(store),
                "r": float(received),
                "e": list(batch.events),
            }
        )
    return records, offset


class _RedisSpool:
    """A Redis list of records; one drain at a time (a lock key) takes them from the head."""

    def __init__(self, url: str, key: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.key = key

    def push(self, record: bytes) -> None:
        self.client.rpush(self.key, record)

    def chunks(self) -> Iterator[tuple[list[dict[str, Any]], Callable[[], object]]]:
        token = secrets.token_hex(8)
        lock = f"{self.key}:lock"
        if not self.client.set(lock, token, nx=True, ex=DRAIN_LOCK_SECONDS):
            return
        try:
            while True:
                raw = [
                    item if isinstance(item, bytes) else item.encode()
                    for item in self.client.lrange(self.key, 0, DRAIN_STEP - 1)
                ]
                if not raw:
                    return
                records = [record for item in raw for record in _read_records(item)[0]]
                yield records, functools.partial(self.client.ltrim, self.key, len(raw), -1)
        finally:
            if self.client.get(lock) == token.encode():
                self.client.delete(lock)

    def size(self) -> int:
        return int(self.client.llen(self.key))

    def clear(self) -> None:
        self.client.delete(self.key, f"{self.key}:lock")


class _JournalSpool:
    """Append-only journal files on local disk, one open per process at a time and locked (flock) while open.

    Intake appends a record with one write() (in the page cache: it survives the process, not the machine). The
    journal is closed and a new one opened every EVENTS_DRAIN_INTERVAL_SECONDS; a drain takes any journal whose
    lock it gets (closed ones, or those of processes that died), writes it, and deletes it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.fd: int | None = None
        self.opened = 0.0
        self.pid = 0

    def push(self, record: bytes) -> None:
        with self.lock:
            now = time.monotonic()
            if self.fd is None or self.pid != os.getpid() or now - self.opened > _rotate_seconds():
                self._open(now)
            assert self.fd is not None  # noqa: S101 (set by _open)
            os.write(self.fd, record)

    def _open(self, now: float) -> None:
        if self.fd is not None and self.pid == os.getpid():
            os.close(self.fd)  # releases its lock: the journal is now drainable
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.journal"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.fd, self.opened, self.pid = fd, now, os.getpid()

    def seal(self) -> None:
        """Close this process's open journal so that the next drain takes it."""
        with self.lock:
            if self.fd is not None and self.pid == os.getpid():
                os.close(self.fd)
            self.fd = None

    def _journals(self) -> list[Path]:
        return sorted(self.folder.glob("*.journal")) if self.folder.exists() else []

    def chunks(self) -> Iterator[tuple[list[dict[str, Any]], Callable[[], object]]]:
        self.seal()
        for path in self._journals():
            try:
                handle = open(path, "rb")  # noqa: SIM115 (held across the yield, closed below)
            except FileNotFoundError:
                continue  # another drain took it
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # open in a live process, or being drained
                if not path.exists():
                    continue  # drained and deleted while we waited for the lock
                data = handle.read()
                records, used = _read_records(data)
                if used < len(data):
                    logger.error("events.journal_tail_dropped", extra={"journal": path.name, "bytes": len(data) - used})
                yield records, functools.partial(path.unlink, missing_ok=True)

    def size(self) -> int:
        return sum(len(_read_records(path.read_bytes())[0]) for path in self._journals())

    def clear(self) -> None:
        self.seal()
        for path in self._journals():
            path.unlink(missing_ok=True)


def _rotate_seconds() -> float:
    return max(float(settings.EVENTS_DRAIN_INTERVAL_SECONDS), 0.5)


def _spool() -> "_RedisSpool | _JournalSpool":
    return _spool_for(str(settings.EVENTS_SPOOL_URL), str(settings.EVENTS_SPOOL_KEY), str(settings.EVENTS_SPOOL_DIR))


@cache
def _spool_for(url: str, key: str, folder: str) -> "_RedisSpool | _JournalSpool":
    return _RedisSpool(url, key) if url else _JournalSpool(Path(folder))


def spooled_batches() -> int:
    """How many accepted batches wait in the spool (monitoring, tests)."""
    return _spool().size()


def clear_event_spool() -> None:
    """Drop every spooled batch (tests only: spooled batches were accepted)."""
    _spool().clear()


# --- Draining: spool -> ShopperEvent -----------------------------------------------------------------------

_drainer_lock = threading.Lock()
_drainer: threading.Thread | None = None
_next_kick = 0.0


def _schedule_drain() -> None:
    """Make sure a drain follows: this process's drain thread (EVENTS_DRAIN_IN_PROCESS), else a Celery task
    enqueued at most once per EVENTS_DRAIN_INTERVAL_SECONDS per process. Intake never waits for either."""
    global _drainer, _next_kick
    if settings.EVENTS_DRAIN_IN_PROCESS:
        if _drainer is None or not _drainer.is_alive():
            with _drainer_lock:
                if _drainer is None or not _drainer.is_alive():
                    _drainer = threading.Thread(target=_drain_forever, name="events-drain", daemon=True)
                    _drainer.start()
        return
    interval = float(settings.EVENTS_DRAIN_INTERVAL_SECONDS)
    now = time.monotonic()
    if interval > 0 and now < _next_kick:
        return
    _next_kick = now + interval
    from recommendations.tasks import drain_events_task  # services enqueue this task

    try:
        drain_events_task.apply_async(countdown=interval, retry=False)
    except Exception:  # a broker outage: beat drains every minute anyway
        logger.warning("events.drain_kick_failed", exc_info=True)


def _drain_forever() -> None:
    while True:
        time.sleep(_rotate_seconds())
        try:
            close_old_connections()
            drain_event_spool()
        except Exception:
            logger.exception("events.drain_failed")


def drain_event_spool() -> int:
    """Write spooled batches to the database, oldest first, until the spool is empty; returns events written.

    A batch leaves the spool only after its transaction committed; a database error stops the drain with the
    spool intact (the next drain retries). Concurrent drains never take the same batch.
    """
    written = 0
    deadline = time.monotonic() + DRAIN_MAX_SECONDS
    chunks = _spool().chunks()
    try:
        for records, acknowledge in chunks:
            try:
                written += write_event_records(records=records)
            except (DatabaseError, InterfaceError) as exc:
                logger.warning("events.drain_deferred", extra={"error": str(exc)})
                break
            acknowledge()
            if time.monotonic() > deadline:
                break
    finally:
        chunks.close()  # type: ignore[attr-defined]
    return written


def write_event_records(*, records: Sequence[dict[str, Any]]) -> int:
    """Insert the events of spool records (idempotent by store and event_id); returns the rows offered.

    Site keys without a store id are resolved here (a site key no serving store has is dropped, logged). The
    source comes from each rec_id's prefix and, for network ids, the miner from its answer in the same store.
    Events without a session id are dropped for placements whose store turned anonymous events off.
    """
    if not records:
        return 0
    unresolved = {r["k"] for r in records if r.get("s") is None}
    store_ids = (
        dict(Store.objects.filter(site_key__in=unresolved, status__in=SERVING_STATUSES).values_list("site_key", "id"))
        if unresolved
        else {}
    )
    network_ids = {
        e["rec_id"] for r in records for e in r["e"] if rec_id_source(e.get("rec_id") or "") == Source.NETWORK
    }
    hotkeys = {
        (store_id, rec_id): hotkey
        for rec_id, store_id, hotkey in NetworkAnswer.objects.filter(rec_id__in=network_ids).values_list(
            "rec_id", "store_id", "miner_hotkey"
        )
    }
    # A store removed (uninstalled, redacted) after its batch was spooled: its events go, or the batch would stop
    # every later drain on the foreign key.
    resolved = {r["s"] for r in records if r.get("s") is not None}
    existing = set(Store.objects.filter(id__in=resolved).values_list("id", flat=True)) if resolved else set()
    rows: list[ShopperEvent] = []
    known: set[int] = set()
    for record in records:
        store_id = record.get("s") or store_ids.get(record["k"])
        if store_id is None or (record.get("s") is not None and store_id not in existing):
            logger.warning("events.unknown_site_key", extra={"site_key": record["k"], "events": len(record["e"])})
            continue
        known.add(store_id)
        received = datetime.fromtimestamp(float(record["r"]), tz=UTC)
        for event in record["e"]:
            rec_id = event.get("rec_id") or ""
            occurred = datetime.fromtimestamp(float(event["ts"]), tz=UTC)
            rows.append(
                ShopperEvent(
                    store_id=store_id,
                    event_id=event["event_id"],
                    type=event["type"],
                    occurred_at=min(max(occurred, received - MAX_EVENT_AGE), received),
                    received_at=received,
                    sku=event["sku"],
                    rec_id=rec_id,
                    source=rec_id_source(rec_id) or "",
                    miner_hotkey=hotkeys.get((store_id, rec_id), ""),
                    placement=event.get("placement") or "",
                    arm=event.get("arm") or "",
                    session_id=event.get("session_id") or "",
                )
            )
    silent = set(
        PlacementSettings.objects.filter(store_id__in=known, anonymous_events=False).values_list(
            "store_id", "placement"
        )
    )
    if silent:
        rows = [row for row in rows if row.session_id or (row.store_id, row.placement) not in silent]
    ShopperEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)


def prune_events(*, before: datetime) -> int:
    """Delete raw events received before `before` (their days are rolled up first); returns how many went."""
    return delete_in_batches(ShopperEvent.objects.filter(received_at__lt=before))
