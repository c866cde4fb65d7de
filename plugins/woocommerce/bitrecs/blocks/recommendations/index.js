/* The block's editor side, written for the browser as is (no build step): a placeholder and two settings. */
(function (blocks, element, blockEditor, components) {
  var el = element.createElement;
  blocks.registerBlockType("bitrecs/recommendations", {
    edit: function (props) {
      var a = props.attributes;
      return el(
        "div",
        blockEditor.useBlockProps({ className: "bitrecs-block-placeholder" }),
        el(
          blockEditor.InspectorControls,
          null,
          el(
            components.PanelBody,
            { title: "Bitrecs" },
            el(components.SelectControl, {
              label: "Placement",
              value: a.placement,
              options: [
                { label: "From the page", value: "" },
                { label: "Product: goes well with", value: "product" },
                { label: "Cart: complete your order", value: "cart" },
                { label: "Home: popular now", value: "home" },
              ],
              onChange: function (v) { props.setAttributes({ placement: v }); },
            }),
            el(components.RangeControl, {
              label: "Products shown",
              value: a.limit,
              min: 1,
              max: 20,
              onChange: function (v) { props.setAttributes({ limit: v }); },
            })
          )
        ),
        "Bitrecs recommendations (" + (a.placement || "from the page") + ", " + a.limit + " products)"
      );
    },
    save: function () { return null; },
  });
})(window.wp.blocks, window.wp.element, window.wp.blockEditor, window.wp.components);
