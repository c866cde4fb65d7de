"""Recommendation services, one module per concern.

- lists: building, refreshing and storing the recommendation lists the widget is served from
- store_settings: the merchant settings the portal saves (rules, placements, attribution, network), cache forgetting
"""

from recommendations.services.lists import (
    ListsWritten,
    prune_network_answers,
    prune_saved_engines,
    rebuild_store_lists,
    refresh_pending_lists,
    refresh_product_lists,
    request_list_refresh,
    store_network_list,
)

__all__ = [
    "ListsWritten",
    "prune_network_answers",
    "prune_saved_engines",
    "rebuild_store_lists",
    "refresh_pending_lists",
    "refresh_product_lists",
    "request_list_refresh",
    "store_network_list",
]
