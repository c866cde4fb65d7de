"""Reads of attribution: what store, list version and miner a rec_id names."""

from dataclasses import dataclass

from recommendations.models import NetworkAnswer, RecommendationList, Source, rec_id_prefix


@dataclass(frozen=True)
class RecAttribution:
    """What a rec_id names: the list's source and, for network answers, the miner behind it."""

    rec_id: str
    source: str
    store_id: int
    query_id: str
    placement: str
    item_ids: tuple[str, ...]
    miner_hotkey: str = ""
    validator: str = ""


def get_rec_attribution(*, rec_id: str) -> RecAttribution | None:
    """Resolve a rec_id from a widget event or an order line to the list version (and miner) that produced it.

    Network ids ("n_…") resolve for as long as their NetworkAnswer is kept, even after a newer answer replaced
    them; local ids ("l_…") resolve while their list version is current (None after a rebuild: still local).
    """
    row: NetworkAnswer | RecommendationList | None = (
        (NetworkAnswer if rec_id.startswith("n_") else RecommendationList).objects.filter(rec_id=rec_id).first()
    )
    if row is None:
        return None
    return RecAttribution(
        rec_id=rec_id,
        source=Source.NETWORK if isinstance(row, NetworkAnswer) else row.source,
        store_id=row.store_id,
        query_id=row.query_id,
        placement=row.placement,
        item_ids=tuple(row.item_ids),
        miner_hotkey=row.miner_hotkey,
        validator=row.validator,
    )


def rec_id_source(rec_id: str) -> str | None:
    """The source a rec_id was issued for, from its prefix alone ("network", "local" or None)."""
    return next((source for source in Source if rec_id.startswith(rec_id_prefix(source))), None)
