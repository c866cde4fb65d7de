from typing import Any

from django.core.management.base import BaseCommand

from merchants.services.stores import rotate_credential_encryption


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored platform credential with the first key of FIELD_ENCRYPTION_KEYS. "
        "Rotate by putting a new key first (keep the old ones after it), run this, then drop the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = rotate_credential_encryption()
        self.stdout.write(f"re-encrypted {rows} credential row(s) with the current key")
