"""Services of the subnet: ask a validator about one product and check its answer against the store's catalog."""

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.utils import timezone

from catalog_sync.models import Product
from merchants.models import Store
from subnet.answers import NAME_MAX_LENGTH, PRICE_MAX_LENGTH, REASON_MAX_LENGTH, clean_text, find_sku_problem
from subnet.client import RecAnswer, ValidatorClient
from subnet.exceptions import AnswerRejected, CandidatePoolTooSmall
from subnet.selectors import (
    DEFAULT_POOL_SIZE,
    MIN_POOL_SIZE,
    get_products_by_wire_sku,
    is_valid_for_validator,
    list_candidate_pool,
    wire_sku,
)
from subnet.types import format_created_at

logger = logging.getLogger(__name__)

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
) -> CheckedAnswer:
    """Send one signed request about `product` (catalog: its candidate pool) to a validator and check the answer.

    Raises `CandidatePoolTooSmall`, `ValueError` for a query a validator would refuse (e.g. a SKU shorter
    than 3 characters), a `subnet.client.ValidatorError`, or `AnswerRejected`.
    """
    pool = list_candidate_pool(store=store, product=product, size=pool_size)
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
