"""The demo's drawn product pictures are well-formed SVG whatever the product's title and type."""

from xml.dom.minidom import Text, parseString

import pytest

from bitrecs_site.demo.placeholder import product_svg


@pytest.mark.parametrize(
    ("title", "kind", "label"),
    [
        ("Bent Wood Macbook Holder", "Mobile & Laptop Accessories", "MOBILE & LAPTOP ACCESSORIES"),
        ('<b>"Quoted"</b>', "<script>", "<SCRIPT>"),
        ("", "", "PRODUCT"),
    ],
)
def test_the_picture_is_well_formed_svg_with_the_type_as_its_label(title: str, kind: str, label: str) -> None:
    svg = parseString(product_svg(title=title, kind=kind))  # noqa: S318 (our own output)

    texts = [
        "".join(child.data for child in node.childNodes if isinstance(child, Text))
        for node in svg.getElementsByTagName("text")
    ]
    assert texts[1] == label
