"""Reads of the recommendations app, one module per job: stores (serving config), serving (the widget's answer),
attribution (what a rec_id names), explain (why a list is what it is; a rule change's preview), store_settings (the
merchant settings as the portal edits them). Per-process caches and the live engine live in
recommendations.process_state.
"""

from recommendations.selectors.attribution import RecAttribution, get_rec_attribution, rec_id_source
from recommendations.selectors.serving import Recommendations, ServedItem, get_recommendations
from recommendations.selectors.stores import (
    SERVING_STATUSES,
    ServingStore,
    StoreRules,
    build_serving_store,
    get_external_ids_for_skus,
    get_serving_store,
    is_origin_allowed,
    normalise_category,
)

__all__ = [
    "SERVING_STATUSES",
    "RecAttribution",
    "Recommendations",
    "ServedItem",
    "ServingStore",
    "StoreRules",
    "build_serving_store",
    "get_external_ids_for_skus",
    "get_rec_attribution",
    "get_recommendations",
    "get_serving_store",
    "is_origin_allowed",
    "normalise_category",
    "rec_id_source",
]
