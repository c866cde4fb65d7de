"""The local recommender: the pure scoring core and the merchant-rules filter (no Django imported here).

The ORM loader lives in recommendations.engine.loader, so the core stays importable (and benchmarkable)
without Django settings.
"""

from recommendations.engine.core import CatalogItem, EngineConfig, Placement, Reason, Recommender, ScoredItem
from recommendations.engine.rules import MerchantRules, Rejection, apply_merchant_rules, rejection_reason

__all__ = [
    "CatalogItem",
    "EngineConfig",
    "MerchantRules",
    "Placement",
    "Reason",
    "Recommender",
    "Rejection",
    "ScoredItem",
    "apply_merchant_rules",
    "rejection_reason",
]
