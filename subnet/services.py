"""Services of the subnet: ask a validator about one product and check its answer against the store's catalog."""

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from bitrecs_site.db import delete_in_batches
from catalog_sync.models import Product
from merchants.models import Store
from recommendations.engine import Recommender
from recommendations.models import Placement, RecommendationList, Source
from recommendations.selectors.store_settings import is_network_enabled
from subnet.answers import NAME_MAX_LENGTH, PRICE_MAX_LENGTH, REASON_MAX_LENGTH, clean_text, find_sku_problem
from subnet.client import RecAnswer, ValidatorClient, ValidatorError, ValidatorRateLimited
from subnet.exceptions import AnswerRejected, CandidatePoolTooSmall
from subnet.models import NetworkRequest
from subnet.registry import ValidatorEndpoint
from subnet.selectors import (
    DEFAULT_POOL_SIZE,
    MAX_POOL_SIZE,
    MIN_POOL_SIZE,
    get_products_by_wire_sku,
    is_valid_for_validator,
    list_candidate_pool,
    wire_sku,
)
from subnet.types import format_created_at

logger = logging.getLogger(__name__)

# The share of a request's pool drawn at random from the engine's lower ranks (plausible but weaker candidates),
# so that a miner copying the pool copies a mix, not our list (issue 15).
WEAKER_SHARE = 0.25

# Clip lengths of the miner's self-reported identity and model names.
_IDENTITY_MAX_LENGTH = 64
_MODEL_MAX_LENGTH = 100


@dataclass(frozen=True)
class CheckedItem:
    """One recommendation that passed the checks: a product of the store, with cleaned text."""

    sku: str
    product_id: str
    name: str
    price: str
    reason: str


@dataclass(frozen=True)
class CheckedAnswer:
    """A validator's answer for (store, query SKU) that may be stored and shown."""

    site_key: str
    query_sku: str
    results: tuple[CheckedItem, ...]
    models_used: tuple[str, ...]
    miner_uid: str
    miner_hotkey: str
    created_at: str
    catalog_size: str
    latency_seconds: float
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        """Return the answer as JSON-ready data."""
        data = asdict(self)
        data["results"] = [asdict(item) for item in self.results]
        data["models_used"] = list(self.models_used)
        return data


def build_context(*, products: Sequence[Product]) -> str:
    """Return a request's `context`: a compact JSON array of `{"sku","name","price"}` (§6), prices as strings."""
    items = [
        {
            "sku": wire_sku(product),
            "name": clean_text(product.title, max_length=NAME_MAX_LENGTH),
            "price": str(product.price),
        }
        for product in products
    ]
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def new_request_rng() -> random.Random:
    """A fresh, unpredictable generator for one request's pool (tests pass a seeded `random.Random` instead)."""
    return random.SystemRandom()


def build_request_pool(
    *,
    store: Store,
    product: Product,
    rng: random.Random,
    size: int = DEFAULT_POOL_SIZE,
    include: Sequence[Product] = (),
    recommender: Recommender | None = None,
) -> list[Product]:
    """Return the catalog of one request about `product`, in an order that says nothing about our ranking.

    The query product, the engine's strongest candidates and `WEAKER_SHARE` of the pool drawn by `rng` from its
    lower ranks (ranks up to twice the pool's size, topped up with the store's other offerable products),
    shuffled by `rng`. `include` (a probe's bought products) replace weaker candidates when the pool lacks them,
    so a probe's pool has the size and make-up of a live one. At most `size` products, as `list_candidate_pool`.
    """
    wide = min(MAX_POOL_SIZE, max(size * 2, MIN_POOL_SIZE))
    ranked = list_candidate_pool(store=store, product=product, size=wide, recommender=recommender)
    query, candidates = ranked[0], ranked[1:]
    slots = min(size, len(ranked)) - 1
    weaker_count = min(round(slots * WEAKER_SHARE), max(0, len(candidates) - slots))
    strong = candidates[: slots - weaker_count]
    weaker = rng.sample(candidates[slots - weaker_count :], weaker_count)
    chosen = {wire_sku(item): item for item in (*strong, *weaker)}
    missing = [item for item in include if wire_sku(item) not in chosen and wire_sku(item) != wire_sku(query)]
    for extra in missing:
        if weaker or strong:
            replaced = weaker.pop(rng.randrange(len(weaker))) if weaker else strong.pop()
            del chosen[wire_sku(replaced)]
        chosen[wire_sku(extra)] = extra
    pool = [query, *chosen.values()]
    rng.shuffle(pool)
    return pool


def check_answer(*, store: Store, answer: RecAnswer, query_sku: str, num_results: int) -> CheckedAnswer:
    """Return the answer with cleaned text if every SKU is a product of the store, unique, not the query SKU,
    and there are exactly `num_results`; raise `AnswerRejected` saying why otherwise.

    Prices come from the store's catalog, not from the miner: a shopper must see what the store charges.
    Names and reasons are the miner's, cleaned (no HTML, no control characters, clipped); a name that
    cleans to nothing falls back to the product's title.
    """
    skus = [item.sku for item in answer.results]
    products = get_products_by_wire_sku(store=store, skus=skus)
    problem = find_sku_problem(skus=skus, query_sku=query_sku, num_results=num_results, is_known=products.__contains__)
    if problem is not None:
        raise AnswerRejected(*problem)
    results = []
    for item in answer.results:
        product = products[item.sku]
        name = clean_text(item.name, max_length=NAME_MAX_LENGTH) or clean_text(
            product.title, max_length=NAME_MAX_LENGTH
        )
        price = str(product.price) if product.price is not None else clean_text(item.price, max_length=PRICE_MAX_LENGTH)
        results.append(
            CheckedItem(
                sku=item.sku,
                product_id=product.external_id,
                name=name,
                price=price,
                reason=clean_text(item.reason, max_length=REASON_MAX_LENGTH),
            )
        )
    return CheckedAnswer(
        site_key=store.site_key,
        query_sku=query_sku,
        results=tuple(results),
        models_used=tuple(clean_text(model, max_length=_MODEL_MAX_LENGTH) for model in answer.models_used),
        miner_uid=clean_text(answer.miner_uid, max_length=_IDENTITY_MAX_LENGTH),
        miner_hotkey=clean_text(answer.miner_hotkey, max_length=_IDENTITY_MAX_LENGTH),
        created_at=clean_text(answer.created_at, max_length=_IDENTITY_MAX_LENGTH),
        catalog_size=clean_text(answer.catalog_size, max_length=_IDENTITY_MAX_LENGTH),
        latency_seconds=answer.latency_seconds,
        attempts=answer.attempts,
    )


def request_recommendations(
    *,
    client: ValidatorClient,
    store: Store,
    product: Product,
    num_results: int,
    pool_size: int = DEFAULT_POOL_SIZE,
    user: str = "",
    rng: random.Random | None = None,
    recommender: Recommender | None = None,
) -> CheckedAnswer:
    """Send one signed request about `product` (catalog: its shuffled request pool) to a validator; check the answer.

    rng: shuffles and draws the pool (`build_request_pool`); a fresh unpredictable one by default.
    recommender: the store's engine when the caller already built it (many requests about one store).

    Raises `CandidatePoolTooSmall`, `ValueError` for a query a validator would refuse (e.g. a SKU shorter
    than 3 characters), a `subnet.client.ValidatorError`, or `AnswerRejected`.
    """
    pool = build_request_pool(
        store=store, product=product, size=pool_size, rng=rng or new_request_rng(), recommender=recommender
    )
    return request_pool_recommendations(
        client=client, store=store, product=product, pool=pool, num_results=num_results, user=user
    )


def request_pool_recommendations(
    *,
    client: ValidatorClient,
    store: Store,
    product: Product,
    pool: Sequence[Product],
    num_results: int,
    user: str = "",
) -> CheckedAnswer:
    """Send one signed request about `product` with `pool` (a `build_request_pool` list) as its catalog to a
    validator; check the answer. Raises as `request_recommendations`."""
    valid = sum(1 for candidate in pool if is_valid_for_validator(candidate))
    if valid < MIN_POOL_SIZE:
        raise CandidatePoolTooSmall(
            f"the store has {valid} products a validator accepts around this one; at least {MIN_POOL_SIZE} are needed"
        )
    query_sku = wire_sku(product)
    answer = client.recommend(
        query=query_sku,
        context=build_context(products=pool),
        site_key=store.site_key,
        num_results=num_results,
        created_at=format_created_at(when=timezone.now()),
        user=user,
    )
    try:
        return check_answer(store=store, answer=answer, query_sku=query_sku, num_results=num_results)
    except AnswerRejected as exc:
        logger.warning(
            "subnet.answer_rejected",
            extra={
                "site_key": store.site_key,
                "query": query_sku,
                "code": exc.code,
                "miner_hotkey": answer.miner_hotkey,
            },
        )
        raise


# ------------------------------------------------------------------------------------- asking the network


def pick_products_to_ask(*, store: Store, limit: int) -> list[Product]:
    """Return up to `limit` products worth asking the network about, most ordered first, then newest.

    Published, active, in-stock products whose product-page network list is missing or older than
    RECS_NETWORK_MAX_AGE_SECONDS, and that were not asked in the last BITRECS_ASK_COOLDOWN_MINUTES
    (whatever the outcome, so a failing product is not asked again on every run). None when the merchant
    turned the network off (Store.settings["network"]["enabled"] false: nothing of the store is sent).
    """
    if limit <= 0 or not is_network_enabled(store=store):
        return []
    now = timezone.now()
    fresh_list = RecommendationList.objects.filter(
        store=store,
        source=Source.NETWORK,
        placement=Placement.PRODUCT,
        product=OuterRef("pk"),
        computed_at__gte=now - timedelta(seconds=int(settings.RECS_NETWORK_MAX_AGE_SECONDS)),
    )
    recently_asked = NetworkRequest.objects.filter(
        store=store,
        product=OuterRef("pk"),
        created_at__gte=now - timedelta(minutes=int(settings.BITRECS_ASK_COOLDOWN_MINUTES)),
    )
    rows = (
        Product.objects.filter(store=store, is_published=True, status=Product.Status.ACTIVE, in_stock=True)
        .exclude(Exists(fresh_list))
        .exclude(Exists(recently_asked))
        .annotate(order_count=Count("order_lines"))
        .order_by("-order_count", "-created_at", "-id")
    )
    return list(rows[:limit])


def ask_network_for_product(
    *, client: ValidatorClient, store: Store, product: Product, num_results: int
) -> NetworkRequest:
    """Ask the validator for `product`'s list, store a checked answer as its network list, and record the attempt.

    Returns the `NetworkRequest`: `answered` (list stored), `rejected` (the answer failed our checks; nothing
    stored) or `failed` (no usable answer; `retryable` says whether a later attempt may succeed).
    """
    # Entry-point-level composition: the subnet asks, the recommendations app owns the stored lists.
    from recommendations.services import store_network_list

    record = NetworkRequest(store=store, product=product, query_id=product.external_id, validator=client.base_url)
    started = time.monotonic()
    try:
        answer = request_recommendations(client=client, store=store, product=product, num_results=num_results)
    except AnswerRejected as exc:
        _fill_error(record, status=NetworkRequest.Status.REJECTED, code=exc.code, message=exc.message)
    except ValidatorError as exc:
        _fill_error(record, status=NetworkRequest.Status.FAILED, code=type(exc).__name__, message=str(exc))
        record.retryable = exc.retry_elsewhere
        if isinstance(exc, ValidatorRateLimited):
            record.retry_after_seconds = exc.retry_after
    except CandidatePoolTooSmall as exc:
        _fill_error(record, status=NetworkRequest.Status.FAILED, code=exc.code, message=exc.message)
    except ValueError as exc:  # a query a validator would refuse (e.g. a SKU shorter than 3 characters)
        _fill_error(record, status=NetworkRequest.Status.FAILED, code="invalid_request", message=str(exc))
    else:
        record.miner_hotkey = answer.miner_hotkey
        record.miner_uid = answer.miner_uid
        record.models_used = list(answer.models_used)
        record.latency_ms = round(answer.latency_seconds * 1000)
        try:
            store_network_list(
                store=store,
                product=product,
                placement=Placement.PRODUCT,
                skus=[item.sku for item in answer.results],
                miner_hotkey=answer.miner_hotkey,
                validator=client.base_url,
                models_used=answer.models_used,
                latency_ms=record.latency_ms,
            )
        except ValueError as exc:  # the products of the answer were deleted while we asked
            _fill_error(record, status=NetworkRequest.Status.REJECTED, code="not_storable", message=str(exc))
        else:
            record.status = NetworkRequest.Status.ANSWERED
    if record.latency_ms is None:
        record.latency_ms = round((time.monotonic() - started) * 1000)
    record.save()
    logger.info(
        "subnet.network_asked",
        extra={
            "site_key": store.site_key,
            "query": product.external_id,
            "status": record.status,
            "error_code": record.error_code,
            "latency_ms": record.latency_ms,
        },
    )
    return record


ERROR_MESSAGE_MAX_LENGTH = 2000


def _fill_error(record: NetworkRequest, *, status: str, code: str, message: str) -> None:
    record.status = status
    record.error_code = code[:64]
    # The message may quote the validator's own text: no NUL or control characters, which PostgreSQL refuses.
    record.error_message = clean_text(message, max_length=ERROR_MESSAGE_MAX_LENGTH)


def prune_network_requests(*, before: datetime) -> int:
    """Forget the record of attempts made before `before`; returns how many went."""
    return delete_in_batches(NetworkRequest.objects.filter(created_at__lt=before))


@dataclass(frozen=True)
class ValidatorHealth:
    """What a validator's `/ping` answered just now: up with its round trip, or down with the reason."""

    url: str
    up: bool
    latency_ms: int | None = None
    detail: str = ""


# A page waits at most this long for a validator's /ping.
HEALTH_TIMEOUT_SECONDS = 3.0


def check_validator_health(*, url: str, hotkey: str) -> ValidatorHealth:
    """Call the validator's `/ping` once with its API key (3 s, no retry) and say whether it answered `pong`."""
    if not url:
        return ValidatorHealth(url="", up=False, detail="The validator serves no API address on the chain.")
    client = ValidatorClient(
        url,
        ValidatorEndpoint(url=url, hotkey=hotkey).api_key,
        network=settings.BITRECS_NETWORK,
        timeout=HEALTH_TIMEOUT_SECONDS,
        connect_timeout=HEALTH_TIMEOUT_SECONDS,
        call_budget=HEALTH_TIMEOUT_SECONDS,
        max_attempts=1,
    )
    try:
        answer = client.ping()
    except ValidatorError as exc:
        return ValidatorHealth(url=url, up=False, detail=f"{type(exc).__name__}: {exc}")
    return ValidatorHealth(url=url, up=True, latency_ms=round(answer.latency_seconds * 1000), detail="pong")
