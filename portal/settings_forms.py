"""The settings page's forms: each validates what the merchant typed and names what is wrong in plain words."""

import re
from decimal import Decimal
from typing import Any

from django import forms

from merchants.models import Store
from recommendations.models import Placement, PlacementSettings
from recommendations.selectors import get_external_ids_for_skus
from recommendations.selectors.store_settings import (
    MAX_WINDOW_HOURS,
    AttributionSettings,
    PlacementView,
    RulesSettings,
)
from recommendations.services.store_settings import MAX_RULE_ENTRIES, MAX_RULE_ENTRY_LENGTH

_LIST_HELP = "One per line (commas also separate SKUs and tags)."


def _split(value: str, *, commas: bool) -> list[str]:
    parts = re.split(r"[\n,]" if commas else r"\n", value or "")
    return list(dict.fromkeys(part.strip() for part in parts if part.strip()))


class RulesForm(forms.Form):
    """Merchandising rules, plus the product whose list the preview shows."""

    in_stock_only = forms.BooleanField(required=False, label="Only products in stock")
    published_only = forms.BooleanField(required=False, label="Only published, active products")
    exclude_skus = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Excluded SKUs", help_text=_LIST_HELP
    )
    exclude_tags = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Excluded tags", help_text=_LIST_HELP
    )
    exclude_categories = forms.CharField(
        required=False,
        label="Excluded categories",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='One category path per line, e.g. "Apparel > Socks" (its subcategories too).',
    )
    price_min_ratio = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(100),
        decimal_places=2,
        label="Lowest price, as a multiple of the viewed product's price",
        help_text="E.g. 0.5: nothing under half its price. Empty: no lower bound.",
    )
    price_max_ratio = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(100),
        decimal_places=2,
        label="Highest price, as a multiple of the viewed product's price",
        help_text="E.g. 2: nothing over twice its price. Empty: no upper bound.",
    )
    pinned_skus = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Pinned SKUs",
        help_text="Shown first, in this order, wherever they pass the other rules.",
    )
    preview_sku = forms.CharField(
        required=False, max_length=MAX_RULE_ENTRY_LENGTH, label="Preview the list of product (SKU)"
    )
    preview_placement = forms.ChoiceField(
        choices=[(Placement.PRODUCT, "Product page"), (Placement.CART, "Cart")],
        initial=Placement.PRODUCT,
        required=False,
        label="Placement",
    )

    def __init__(self, *args: Any, store: Store, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = store

    @classmethod
    def initial_for(cls, rules: RulesSettings, *, preview_sku: str = "") -> dict[str, Any]:
        """The form's initial values for saved rules."""
        return {
            "in_stock_only": rules.in_stock_only,
            "published_only": rules.published_only,
            "exclude_skus": "\n".join(rules.exclude_skus),
            "exclude_tags": "\n".join(rules.exclude_tags),
            "exclude_categories": "\n".join(rules.exclude_categories),
            "price_min_ratio": rules.price_min_ratio,
            "price_max_ratio": rules.price_max_ratio,
            "pinned_skus": "\n".join(rules.pinned_skus),
            "preview_sku": preview_sku,
            "preview_placement": Placement.PRODUCT,
        }

    def _entries(self, name: str, *, commas: bool = True) -> list[str]:
        values = _split(self.cleaned_data.get(name, ""), commas=commas)
        if len(values) > MAX_RULE_ENTRIES:
            raise forms.ValidationError(f"At most {MAX_RULE_ENTRIES} entries; this has {len(values)}.")
        too_long = [v for v in values if len(v) > MAX_RULE_ENTRY_LENGTH]
        if too_long:
            raise forms.ValidationError(f"Entries are at most {MAX_RULE_ENTRY_LENGTH} characters: {too_long[0][:40]}…")
        return values

    def _known_skus(self, name: str) -> list[str]:
        values = self._entries(name)
        mapped = get_external_ids_for_skus(store_id=self.store.id, skus=values)
        unknown = [sku for sku, external_id in zip(values, mapped, strict=True) if not external_id]
        if unknown:
            shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise forms.ValidationError(f"Not in your catalog: {shown}. Check the SKU, or wait for the catalog sync.")
        return values

    def clean_exclude_skus(self) -> list[str]:
        return self._known_skus("exclude_skus")

    def clean_pinned_skus(self) -> list[str]:
        return self._known_skus("pinned_skus")

    def clean_exclude_tags(self) -> list[str]:
        return self._entries("exclude_tags")

    def clean_exclude_categories(self) -> list[str]:
        return self._entries("exclude_categories", commas=False)

    def clean_preview_sku(self) -> str:
        return str(self.cleaned_data.get("preview_sku") or "").strip()

    def clean_preview_placement(self) -> str:
        return str(self.cleaned_data.get("preview_placement") or Placement.PRODUCT)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("price_min_ratio"), data.get("price_max_ratio")
        if low is not None and high is not None and low > high:
            self.add_error("price_max_ratio", "The highest price must not be below the lowest.")
        pinned, excluded = set(data.get("pinned_skus") or []), set(data.get("exclude_skus") or [])
        both = sorted(pinned & excluded)
        if both:
            self.add_error("pinned_skus", f"Pinned and excluded at once: {', '.join(both[:5])}.")
        return data

    def rules(self) -> RulesSettings:
        """The rules the (valid) form describes."""
        data = self.cleaned_data
        low, high = data.get("price_min_ratio"), data.get("price_max_ratio")
        return RulesSettings(
            in_stock_only=bool(data.get("in_stock_only")),
            published_only=bool(data.get("published_only")),
            exclude_skus=tuple(data.get("exclude_skus") or ()),
            exclude_tags=tuple(data.get("exclude_tags") or ()),
            exclude_categories=tuple(data.get("exclude_categories") or ()),
            price_min_ratio=None if low is None else float(low),
            price_max_ratio=None if high is None else float(high),
            pinned_skus=tuple(data.get("pinned_skus") or ()),
        )


class PlacementsForm(forms.Form):
    """Title, count and layout of every placement, in one form (fields `<placement>_title` and so on)."""

    def __init__(self, *args: Any, placements: list[PlacementView], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.placements = placements
        for view in placements:
            self.fields[f"{view.placement}_title"] = forms.CharField(
                required=False,
                max_length=120,
                label="Title",
                initial=view.title,
                widget=forms.TextInput(attrs={"placeholder": view.default_title}),
            )
            self.fields[f"{view.placement}_count"] = forms.IntegerField(
                min_value=1, max_value=20, label="Products shown", initial=view.count
            )
            self.fields[f"{view.placement}_layout"] = forms.ChoiceField(
                choices=PlacementSettings.Layout.choices, label="Layout", initial=view.layout
            )

    def rows(self) -> list[dict[str, Any]]:
        """For the template: each placement with its three bound fields."""
        return [
            {
                "view": view,
                "title": self[f"{view.placement}_title"],
                "count": self[f"{view.placement}_count"],
                "layout": self[f"{view.placement}_layout"],
            }
            for view in self.placements
        ]

    def values(self) -> list[tuple[str, str, int, str]]:
        """(placement, title, count, layout) of every placement of the (valid) form."""
        data = self.cleaned_data
        return [
            (
                view.placement,
                data[f"{view.placement}_title"],
                data[f"{view.placement}_count"],
                data[f"{view.placement}_layout"],
            )
            for view in self.placements
        ]


class AttributionForm(forms.Form):
    assisted = forms.BooleanField(
        required=False,
        label="Count assisted sales",
        help_text="An order line without a recommendation id counts as assisted when the same visitor clicked that "
        "product in a recommendation within the window. Shown apart from direct sales; never credited to miners.",
    )
    window_hours = forms.IntegerField(
        min_value=1, max_value=MAX_WINDOW_HOURS, label="Window (hours)", help_text=f"1 to {MAX_WINDOW_HOURS}."
    )

    @classmethod
    def initial_for(cls, current: AttributionSettings) -> dict[str, Any]:
        return {"assisted": current.assisted, "window_hours": current.window_hours}


class NetworkForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Ask the Bitrecs network for recommendations")
