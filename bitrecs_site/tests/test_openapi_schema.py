"""The OpenAPI schema is the contract for integrators: it must generate without warnings and validate."""

from pathlib import Path

import yaml
from django.core.management import call_command


def test_schema_generates_without_warnings_and_validates(tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"

    # --fail-on-warn raises on any warning or error; --validate checks it against the OpenAPI 3 meta-schema.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = yaml.safe_load(target.read_text())
    store = schema["paths"]["/shopify/admin/api/store"]["get"]["responses"]["200"]
    assert store["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ShopifyAdminStore"}
    assert set(schema["components"]["schemas"]["ShopifyAdminStore"]["properties"]) == {
        "shop",
        "site_key",
        "status",
        "settings",
    }
    public_key = schema["paths"]["/subnet/public_key"]["get"]["responses"]["200"]
    assert public_key["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PublicKey"}
    assert schema["components"]["schemas"]["PublicKey"]["required"] == ["public_key"]
