"""Reads for the subnet: a store's products by the SKU sent on the wire, and a request's candidate pool."""

import re
from collections.abc import Iterable
from typing import Final

from django.conf import settings
from django.db.models import Q

from catalog_sync.models import Product
from merchants.models import Store
from recommendations.engine import Recommender
from recommendations.engine.loader import build_recommender_for_store
from subnet import chain
from subnet.registry import load_validators_of_network

DEFAULT_POOL_SIZE: Final = 60
MAX_POOL_SIZE: Final = 100
# A public validator refuses a catalog of fewer valid products (MIN_CATALOG_SIZE, §1.9).
MIN_POOL_SIZE: Final = 6
# The validator removes every character outside this set from names and drops a product left with none.
_VALIDATOR_NAME_STRIP: Final = re.compile(r"[^A-Za-z0-9 |-]")


def wire_sku(product: Product) -> str:
    """Return the SKU a product has in requests and answers: its SKU, or its platform id when it has none."""
    return product.sku or product.external_id


def get_store_by_site_key(*, site_key: str) -> Store | None:
    """Return the store with that site key, or None."""
    return Store.objects.filter(site_key=site_key).first()


def get_product_by_wire_sku(*, store: Store, sku: str) -> Product | None:
    """Return the store's product with that wire SKU (the oldest if several share it), or None."""
    return _by_wire_sku(store=store, skus=[sku]).get(sku)


def get_products_by_wire_sku(*, store: Store, skus: Iterable[str]) -> dict[str, Product]:
    """Return the store's products whose wire SKU is one of `skus`, keyed by it (the oldest per SKU)."""
    return _by_wire_sku(store=store, skus=list(skus))


def _by_wire_sku(*, store: Store, skus: list[str]) -> dict[str, Product]:
    if not skus:
        return {}
    rows = Product.objects.filter(store=store).filter(Q(sku__in=skus) | Q(sku="", external_id__in=skus)).order_by("id")
    found: dict[str, Product] = {}
    for product in rows:
        found.setdefault(wire_sku(product), product)
    return found


def is_valid_for_validator(product: Product) -> bool:
    """Whether a public validator keeps the product in a catalog: a price above 0 and a name left after cleaning."""
    return (
        product.price is not None
        and product.price > 0
        and bool(wire_sku(product))
        and bool(_VALIDATOR_NAME_STRIP.sub("", product.title).strip())
    )


def _is_offerable(product: Product) -> bool:
    return (
        product.is_published
        and product.status == Product.Status.ACTIVE
        and product.in_stock
        and is_valid_for_validator(product)
    )


def list_candidate_pool(
    *, store: Store, product: Product, size: int = DEFAULT_POOL_SIZE, recommender: Recommender | None = None
) -> list[Product]:
    """Return the catalog of a request about `product`: it first, then the local engine's best candidates.

    Candidates are published, active, in-stock products a validator keeps (price above 0, a name left
    after its cleaning), one per wire SKU; the engine's list is topped up with the store's other such
    products (oldest first) when it is short. At most `size` products (6 to 100). recommender: the store's
    engine when the caller already built it (several pools of one store in a row).
    """
    if not MIN_POOL_SIZE <= size <= MAX_POOL_SIZE:
        raise ValueError(f"size must be {MIN_POOL_SIZE} to {MAX_POOL_SIZE}")
    recommender = recommender or build_recommender_for_store(store=store)
    ranked_ids = [
        item.id for item in recommender.recommend(query_id=product.external_id, placement="product", limit=size * 2)
    ]
    by_id = {row.external_id: row for row in Product.objects.filter(store=store, external_id__in=ranked_ids)}
    pool: dict[str, Product] = {wire_sku(product): product}
    for candidate in (by_id[item_id] for item_id in ranked_ids if item_id in by_id):
        if len(pool) >= size:
            break
        if _is_offerable(candidate):
            pool.setdefault(wire_sku(candidate), candidate)
    if len(pool) < size:
        rest = Product.objects.filter(store=store, is_published=True, in_stock=True, price__gt=0).order_by("id")
        for candidate in rest.iterator(chunk_size=500):
            if len(pool) >= size:
                break
            if _is_offerable(candidate):
                pool.setdefault(wire_sku(candidate), candidate)
    return list(pool.values())


def list_probe_hotkeys() -> frozenset[str]:
    """The hotkeys allowed to fetch probes: the validators registered on the local chain (BITRECS_NETWORK=local),
    else the metagraph's validators with a permit and an axon (`subnet.registry`)."""
    if settings.BITRECS_NETWORK == "local":
        return chain.list_validator_hotkeys(netuid=settings.BITRECS_NETUID)
    return frozenset(validator.hotkey for validator in load_validators_of_network() if validator.hotkey)
