"""Reads of a store's merchant settings as the portal edits them (the serving code reads them in selectors.stores).

Store.settings holds, besides the rules (see recommendations.selectors.stores):

    attribution: {"assisted": bool = false, "window_hours": int = ATTRIBUTION_DEFAULT_WINDOW_HOURS}
    network: {"enabled": bool = true}    false: the store's products are never sent to the Bitrecs network
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from merchants.models import Store
from recommendations.experiments import DEFAULT_COUNT, DEFAULT_TITLES
from recommendations.models import Placement, PlacementSettings
from recommendations.selectors.stores import _ratio, _str_list

MAX_WINDOW_HOURS = 24 * 30


@dataclass(frozen=True)
class RulesSettings:
    """The merchandising rules as the merchant wrote them (SKUs, not product ids)."""

    in_stock_only: bool = True
    published_only: bool = True
    exclude_skus: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    price_min_ratio: float | None = None
    price_max_ratio: float | None = None
    pinned_skus: tuple[str, ...] = ()

    def as_settings(self) -> dict[str, Any]:
        """The Store.settings["recommendations"] form of these rules."""
        return {
            "in_stock_only": self.in_stock_only,
            "published_only": self.published_only,
            "exclude_skus": list(self.exclude_skus),
            "exclude_tags": list(self.exclude_tags),
            "exclude_categories": list(self.exclude_categories),
            "price_min_ratio": self.price_min_ratio,
            "price_max_ratio": self.price_max_ratio,
            "pinned_skus": list(self.pinned_skus),
        }


@dataclass(frozen=True)
class PlacementView:
    placement: str
    label: str
    title: str
    default_title: str
    count: int
    layout: str


@dataclass(frozen=True)
class AttributionSettings:
    assisted: bool
    window_hours: int


def get_rules_settings(*, store: Store) -> RulesSettings:
    """The store's rules as saved (defaults for what is missing or malformed)."""
    raw = _section(store, "recommendations")
    return RulesSettings(
        in_stock_only=raw.get("in_stock_only") is not False,
        published_only=raw.get("published_only") is not False,
        exclude_skus=_strings(raw.get("exclude_skus")),
        exclude_tags=_strings(raw.get("exclude_tags")),
        exclude_categories=_strings(raw.get("exclude_categories")),
        price_min_ratio=_ratio(raw.get("price_min_ratio")),
        price_max_ratio=_ratio(raw.get("price_max_ratio")),
        pinned_skus=_strings(raw.get("pinned_skus")),
    )


def get_placement_views(*, store: Store) -> list[PlacementView]:
    """Every placement's widget settings (title, count, layout), the defaults where none are saved."""
    saved = {row.placement: row for row in PlacementSettings.objects.filter(store=store)}
    views = []
    for placement, label in Placement.choices:
        row = saved.get(placement)
        views.append(
            PlacementView(
                placement=placement,
                label=str(label),
                title=row.title if row else "",
                default_title=DEFAULT_TITLES.get(placement, ""),
                count=row.count if row else DEFAULT_COUNT,
                layout=row.layout if row else PlacementSettings.Layout.GRID,
            )
        )
    return views


def get_attribution_settings(*, store: Store) -> AttributionSettings:
    """Whether assisted sales count, and their window (hours), as attribution reads them."""
    raw = _section(store, "attribution")
    hours = raw.get("window_hours", settings.ATTRIBUTION_DEFAULT_WINDOW_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= MAX_WINDOW_HOURS:
        hours = settings.ATTRIBUTION_DEFAULT_WINDOW_HOURS
    return AttributionSettings(assisted=raw.get("assisted") is True, window_hours=int(hours))


def is_network_enabled(*, store: Store) -> bool:
    """False when the merchant turned off sending their products to the Bitrecs network (on by default)."""
    return _section(store, "network").get("enabled") is not False


def _section(store: Store, name: str) -> dict[str, Any]:
    raw = store.settings.get(name) if isinstance(store.settings, dict) else None
    return raw if isinstance(raw, dict) else {}


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(_str_list(value))
