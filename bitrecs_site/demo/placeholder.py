"""Product pictures drawn on the fly for the demo catalog (its real images live on a CDN the demo never calls)."""

import hashlib
import re
from html import escape

_WORD = re.compile(r"[A-Za-z0-9]+")


def product_svg(*, title: str, kind: str) -> str:
    """A square SVG tile: a soft two-tone background from the title's hash, its initials and its type."""
    digest = hashlib.blake2b(title.encode(), digest_size=4).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    tilt = 20 + digest[2] % 40
    initials = "".join(word[0] for word in _WORD.findall(title)[:2]).upper() or "?"
    label = escape(kind[:28] or "Product")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 600" width="600" height="600">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},70%,90%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + tilt) % 360},60%,76%)"/></linearGradient></defs>'
        '<rect width="600" height="600" fill="url(#g)"/>'
        f'<circle cx="470" cy="130" r="170" fill="hsl({hue},60%,96%)" opacity=".45"/>'
        f'<rect x="150" y="170" width="300" height="260" rx="36" fill="hsl({hue},45%,98%)" opacity=".8"/>'
        f'<text x="300" y="335" font-family="system-ui,sans-serif" font-size="120" font-weight="700" '
        f'text-anchor="middle" fill="hsl({hue},40%,32%)">{escape(initials)}</text>'
        f'<text x="300" y="520" font-family="system-ui,sans-serif" font-size="34" text-anchor="middle" '
        f'fill="hsl({hue},35%,28%)" letter-spacing="2">{label.upper()}</text>'
        "</svg>"
    )
