"""Writes of a store's merchant settings (the portal's settings page): rules, placements, attribution, network.

Each write locks the store row so two saves of different sections cannot lose each other's change, then
forgets this process's serving caches of the store so the widget answers with the change at once.
"""

from typing import Any

from django.db import transaction

from merchants.exceptions import InvalidRequest
from merchants.models import Store
from recommendations import process_state
from recommendations.models import Placement, PlacementSettings
from recommendations.selectors.store_settings import MAX_WINDOW_HOURS, RulesSettings

MAX_RULE_ENTRIES = 200
MAX_RULE_ENTRY_LENGTH = 255


def save_merchant_rules(*, store: Store, rules: RulesSettings) -> Store:
    """Store the merchandising rules in Store.settings["recommendations"]; InvalidRequest (400) when malformed."""
    _check_rules(rules)
    return _save_section(store=store, name="recommendations", value=rules.as_settings())


def save_attribution_settings(*, store: Store, assisted: bool, window_hours: int) -> Store:
    """Turn assisted sales on or off and set their window (1 to 720 hours)."""
    if isinstance(window_hours, bool) or not 1 <= window_hours <= MAX_WINDOW_HOURS:
        raise InvalidRequest(f"window_hours: give a whole number of hours from 1 to {MAX_WINDOW_HOURS}.")
    return _save_section(
        store=store, name="attribution", value={"assisted": bool(assisted), "window_hours": int(window_hours)}
    )


def save_network_sharing(*, store: Store, enabled: bool) -> Store:
    """Allow (or stop) sending the store's product names, SKUs and prices to the Bitrecs network."""
    return _save_section(store=store, name="network", value={"enabled": bool(enabled)})


def save_placement_settings(*, store: Store, placement: str, title: str, count: int, layout: str) -> PlacementSettings:
    """Create or update how the widget shows one placement (title, 1 to 20 products, grid or row)."""
    if placement not in Placement.values:
        raise InvalidRequest(f"placement: use one of {', '.join(Placement.values)}.")
    if layout not in PlacementSettings.Layout.values:
        raise InvalidRequest(f"layout: use one of {', '.join(PlacementSettings.Layout.values)}.")
    if isinstance(count, bool) or not 1 <= count <= 20:
        raise InvalidRequest("count: show from 1 to 20 products.")
    title = title.strip()
    if len(title) > 120:
        raise InvalidRequest("title: at most 120 characters.")
    row, _ = PlacementSettings.objects.update_or_create(
        store=store, placement=placement, defaults={"title": title, "count": count, "layout": layout}
    )
    forget_serving_caches(store=store)
    return row


def forget_serving_caches(*, store: Store) -> None:
    """Make this process serve the store's saved settings now (other processes follow within the cache TTLs)."""
    process_state.forget_store(store_id=store.id, site_key=store.site_key)


def _save_section(*, store: Store, name: str, value: dict[str, Any]) -> Store:
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        current = locked.settings if isinstance(locked.settings, dict) else {}
        locked.settings = {**current, name: value}
        locked.save(update_fields=["settings", "updated_at"])
    store.settings = locked.settings
    forget_serving_caches(store=store)
    return locked


def _check_rules(rules: RulesSettings) -> None:
    for field in ("exclude_skus", "exclude_tags", "exclude_categories", "pinned_skus"):
        values = getattr(rules, field)
        if len(values) > MAX_RULE_ENTRIES:
            raise InvalidRequest(f"{field}: at most {MAX_RULE_ENTRIES} entries.")
        if any(not value.strip() or len(value) > MAX_RULE_ENTRY_LENGTH for value in values):
            raise InvalidRequest(f"{field}: each entry must be 1 to {MAX_RULE_ENTRY_LENGTH} characters.")
    for field in ("price_min_ratio", "price_max_ratio"):
        ratio = getattr(rules, field)
        if ratio is not None and not 0 <= ratio <= 100:
            raise InvalidRequest(f"{field}: a ratio from 0 to 100 of the viewed product's price.")
    low, high = rules.price_min_ratio, rules.price_max_ratio
    if low is not None and high is not None and low > high:
        raise InvalidRequest("price_min_ratio must not be above price_max_ratio.")
