// The demo storefront's own script (a static file: the page's Content-Security-Policy allows no inline script).
// Its consent banner, and the add-to-cart of a recommendation card. URLs come from the script tag's data attributes.
(function () {
  var script = document.currentScript;
  var urls = { cartAdd: script.getAttribute("data-cart-add-url"), cart: script.getAttribute("data-cart-url") };
  var banner = document.querySelector("[data-consent-banner]");
  if (document.body.classList.contains("has-consent")) banner.hidden = false; // no choice yet: shown whole (base.html)
  function choose(granted) {
    // The consent tool's own record of the choice (strictly necessary), then the signal the widget reads.
    document.cookie = "demo_consent=" + (granted ? "granted" : "denied") + "; path=/; max-age=31536000; SameSite=Lax";
    window.bitrecsConsent = granted;
    document.dispatchEvent(new CustomEvent("bitrecs:consent", { detail: granted }));
    banner.hidden = true;
    document.body.classList.remove("has-consent");
  }
  banner.addEventListener("click", function (e) {
    var button = e.target.closest("[data-consent]");
    if (button) choose(button.getAttribute("data-consent") === "grant");
  });
  document.querySelector("[data-consent-open]").addEventListener("click", function () {
    banner.hidden = false;
    banner.querySelector("[data-consent=grant]").focus();
  });
  // A card's add-to-cart button: the store's cart takes the SKU and the rec id as a hidden line property.
  document.addEventListener("bitrecs:add-to-cart", function (e) {
    var detail = e.detail, button = e.target, body = new URLSearchParams({ sku: detail.sku, quantity: "1" });
    if (detail.rec_id) body.set("properties[_bitrecs_rec_id]", detail.rec_id);
    if (detail.arm) body.set("properties[_bitrecs_arm]", detail.arm);
    button.disabled = true;
    fetch(urls.cartAdd, { method: "POST", body: body, headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
      .then(function (cart) {
        document.querySelectorAll("[data-cart-count]").forEach(function (n) { n.textContent = cart.item_count; });
        button.textContent = "Added";
        if (location.pathname === urls.cart) location.reload();
      })
      .catch(function () { button.textContent = "Try again"; button.disabled = false; });
  });
})();
