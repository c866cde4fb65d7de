/*! Bitrecs storefront widget. One file, no dependencies; load it with `defer`.
 *
 * <script defer src="https://…/widget.js" data-site-key="…" [data-api-base] [data-currency] [data-locale]
 *         [data-product-sku]></script>
 * <div data-bitrecs-placement="product|cart|home" data-bitrecs-sku="…" data-bitrecs-limit="4"
 *      [data-bitrecs-layout="grid|row"] [data-bitrecs-cart="SKU,SKU"] [data-bitrecs-add-to-cart]></div>
 *
 * Space for the cards is reserved (skeleton cards of the final size) before the answer is asked for, so the
 * page never shifts. Consent (Shopify Customer Privacy API, WP Consent API or window.bitrecsConsent): before
 * it nothing is stored on the device and only anonymous events are sent, if the store allows them.
 * A card's add-to-cart button fires `bitrecs:add-to-cart` ({sku, rec_id, arm, placement, url}) for the page.
 * Global: window.Bitrecs.refresh() only.
 */
(function (w, d) {
  "use strict";
  if (w.Bitrecs) return;
  var script = d.currentScript || d.querySelector("script[data-site-key]");
  if (!script || !script.dataset.siteKey) return;
  var cfg = script.dataset;
  var siteKey = cfg.siteKey;
  var api;
  try {
    api = (cfg.apiBase || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  } catch (e) {
    return;
  }
  var ID = /^[\w-]{1,64}$/;
  var SID = "bitrecs_sid";
  var VIEWED = "bitrecs_viewed";
  var SID_DAYS = 30;
  var TITLES = { product: "You may also like", cart: "Goes well with your cart", home: "Popular right now" };
  var queue = [];
  var consent = false;
  var anonymous = null; // the store's setting, known from the first answer (null: not yet)
  var arm = ""; // the visitor's experiment arm, from the last answer
  var gens = new WeakMap();
  var bound = new WeakSet();
  var query = new URLSearchParams(location.search);
  var cameRec = clean(query.get("bitrecs_rec_id"));
  var cameArm = clean(query.get("bitrecs_arm"));

  function clean(value) {
    return typeof value === "string" && ID.test(value) ? value : "";
  }

  function el(tag, name) {
    var node = d.createElement(tag);
    if (name) node.className = "bitrecs-" + name;
    return node;
  }

  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.from(b, function (x) {
      return (x + 256).toString(16).slice(1);
    }).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  // --- consent ----------------------------------------------------------------------------------------------

  function readConsent() {
    var flag = w.bitrecsConsent;
    if (flag === true || flag === false) return flag;
    var privacy = w.Shopify && w.Shopify.customerPrivacy;
    if (privacy && typeof privacy.analyticsProcessingAllowed === "function") {
      return privacy.analyticsProcessingAllowed() === true;
    }
    if (typeof w.wp_has_consent === "function") return w.wp_has_consent("statistics") === true;
    return false;
  }

  function onConsent() {
    try {
      consent = readConsent();
      if (!consent) {
        localStorage.removeItem(SID);
        localStorage.removeItem(VIEWED);
      }
    } catch (e) {
      /* storage blocked: nothing was stored */
    }
    carry();
  }

  function sessionId() {
    if (!consent) return "";
    try {
      var parts = (localStorage.getItem(SID) || "").split(".");
      if (!clean(parts[0]) || !(Date.now() - Number(parts[1]) < SID_DAYS * 864e5)) {
        parts = [uuid(), String(Date.now())];
        localStorage.setItem(SID, parts.join("."));
      }
      return parts[0];
    } catch (e) {
      return "";
    }
  }

  function viewed() {
    try {
      var list = consent ? JSON.parse(localStorage.getItem(VIEWED) || "[]") : [];
      return Array.isArray(list) ? list.filter(function (s) {
        return typeof s === "string";
      }).slice(0, 20) : [];
    } catch (e) {
      return [];
    }
  }

  function remember(sku) {
    if (!consent || !sku) return;
    try {
      var list = [sku].concat(viewed().filter(function (s) {
        return s !== sku;
      }));
      localStorage.setItem(VIEWED, JSON.stringify(list.slice(0, 20)));
    } catch (e) {
      /* storage full or blocked */
    }
  }

  // --- events -------------------------------------------------------------------------------------------------

  function track(type, sku, rec, placement, eventArm) {
    if (!sku) return;
    var event = { event_id: uuid(), type: type, ts: new Date().toISOString(), sku: String(sku).slice(0, 255) };
    if (rec) event.rec_id = rec;
    if (placement) event.placement = placement;
    if (eventArm) event.arm = eventArm;
    queue.push(event);
    if (queue.length > 500) queue.shift();
    if (queue.length >= 50) flush();
  }

  function flush() {
    if (!queue.length || (!consent && anonymous !== true)) return; // anonymous events only if the store allows
    var sid = sessionId();
    while (queue.length) {
      var body = JSON.stringify({
        site_key: siteKey,
        events: queue.splice(0, 50).map(function (event) {
          if (sid) event.session_id = sid;
          if (!event.arm && arm) event.arm = arm;
          return event;
        }),
      });
      var url = api + "/api/v1/events";
      var sent = false;
      try {
        sent = navigator.sendBeacon(url, body); // a string goes as text/plain: no CORS preflight
      } catch (e) {
        /* no beacon */
      }
      if (!sent) {
        fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit", headers: { "Content-Type": "text/plain" } })
          .catch(function () {});
      }
    }
  }

  function cardEvent(type, card) {
    var box = card.closest("[data-bitrecs-placement]");
    track(type, card.dataset.bitrecsSku, card.dataset.bitrecsRecId, box && box.dataset.bitrecsPlacement, card.dataset.bitrecsArm);
  }

  var seen = w.IntersectionObserver
    ? new IntersectionObserver(
        function (entries) {
          entries.forEach(function (entry) {
            if (entry.isIntersecting && entry.intersectionRatio >= 0.5) {
              seen.unobserve(entry.target);
              cardEvent("impression", entry.target);
            }
          });
        },
        { threshold: 0.5 }
      )
    : null;

  // --- rendering ----------------------------------------------------------------------------------------------

  // One literal (pages that hold the placements' space at first paint inline it: bitrecs_site/widget_asset.py).
  // If the script never runs, such a page's skeleton goes blank after 10 s (bitrecs-idle) instead of pulsing.
  var CSS =
    ".bitrecs{display:block;margin:2em 0}" +
    ".bitrecs .bitrecs-title{font-size:1.25em;line-height:1.3;height:1.3em;margin:0 0 .75em;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}" +
    ".bitrecs .bitrecs-list{list-style:none;margin:0;padding:4px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(150px,1fr))}" +
    ".bitrecs-row .bitrecs-list{grid-template-columns:none;grid-auto-flow:column;grid-auto-columns:minmax(150px,1fr);overflow-x:auto;scroll-snap-type:x proximity}" +
    ".bitrecs .bitrecs-item{display:flex;flex-direction:column;min-width:0;margin:0;padding:0;scroll-snap-align:start}" +
    ".bitrecs .bitrecs-card{display:flex;flex-direction:column;color:inherit;text-decoration:none;border-radius:8px}" +
    ".bitrecs .bitrecs-img{display:block;width:100%;height:auto;max-width:none;aspect-ratio:1;object-fit:cover;border-radius:8px;background:#f1f1f1}" +
    ".bitrecs .bitrecs-name{display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden;height:2.6em;line-height:1.3;margin-top:8px}" +
    ".bitrecs .bitrecs-price{display:block;height:1.4em;line-height:1.4;margin-top:4px;font-weight:600}" +
    ".bitrecs .bitrecs-add{display:block;box-sizing:border-box;height:36px;margin:8px 0 0;padding:0 12px;border:1px solid currentColor;border-radius:6px;background:transparent;color:inherit;font:inherit;cursor:pointer}" +
    ".bitrecs a:focus-visible,.bitrecs button:focus-visible{outline:3px solid #1a5fd6;outline-offset:2px}" +
    ".bitrecs .bitrecs-wait{visibility:hidden}" +
    ".bitrecs-busy .bitrecs-title,.bitrecs-skel .bitrecs-name,.bitrecs-skel .bitrecs-price{background:linear-gradient(#ececec,#ececec) 0 50%/60% .8em no-repeat}" +
    ".bitrecs-skel .bitrecs-add{border-color:#ececec}" +
    "@media (prefers-reduced-motion:no-preference){.bitrecs-skel{animation:bitrecs-pulse 1.5s ease-in-out infinite}}" +
    "@keyframes bitrecs-pulse{50%{opacity:.55}}" +
    ".bitrecs-empty>*{visibility:hidden}" +
    ".bitrecs-busy>*{animation:bitrecs-idle 0s 10s forwards}" +
    "@keyframes bitrecs-idle{to{visibility:hidden}}";

  function style() {
    if (d.getElementById("bitrecs-css")) return;
    var node = el("style");
    node.id = "bitrecs-css";
    node.textContent = CSS;
    (d.head || d.documentElement).appendChild(node);
  }

  function slot(box, li, skeleton) {
    li.className = "bitrecs-item" + (skeleton ? " bitrecs-skel" : "");
    if (box.hasAttribute("data-bitrecs-add-to-cart")) li.appendChild(el("span", "add"));
    return li;
  }

  function reserve(box, placement, limit) {
    var layout = box.dataset.bitrecsLayout === "row" ? "row" : "grid";
    box.className = box.className.replace(/\bbitrecs(-\w+)?\b/g, "").trim();
    box.classList.add("bitrecs", "bitrecs-" + layout, "bitrecs-busy");
    box.setAttribute("aria-busy", "true");
    box.textContent = "";
    var title = el("h2", "title");
    var list = el("ul", "list");
    list.setAttribute("role", "list");
    for (var i = 0; i < limit; i++) {
      var li = el("li");
      li.setAttribute("aria-hidden", "true");
      var card = el("span", "card");
      card.append(el("span", "img"), el("span", "name"), el("span", "price"));
      li.appendChild(card);
      list.appendChild(slot(box, li, true));
    }
    box.append(title, list);
  }

  function money(value, answer, box) {
    var n = parseFloat(value);
    if (value === null || value === "" || !isFinite(n)) return "";
    var currency = answer.currency || box.dataset.currency || cfg.currency;
    var locale = answer.locale || box.dataset.locale || cfg.locale || d.documentElement.lang || undefined;
    try {
      return new Intl.NumberFormat(locale, currency ? { style: "currency", currency: currency } : { minimumFractionDigits: 2 }).format(n);
    } catch (e) {
      return n.toFixed(2) + (currency ? " " + currency : "");
    }
  }

  function link(raw, rec, cardArm) {
    try {
      var url = new URL(raw, location.href);
      if (!/^https?:$/.test(url.protocol)) return null;
      if (rec) url.searchParams.set("bitrecs_rec_id", rec);
      if (cardArm) url.searchParams.set("bitrecs_arm", cardArm);
      return url;
    } catch (e) {
      return null;
    }
  }

  function image(raw) {
    var url = link(raw);
    if (!url) return "";
    if (url.hostname === "cdn.shopify.com" && !url.searchParams.has("width")) url.searchParams.set("width", "360");
    return url.href;
  }

  function fill(box, li, item, answer) {
    var rec = clean(item.rec_id) || clean(answer.rec_id);
    var cardArm = clean(answer.arm);
    var url = link(item.url, rec, cardArm);
    if (!url || typeof item.sku !== "string" || !item.sku) return false;
    li.textContent = "";
    li.removeAttribute("aria-hidden");
    var card = el("a", "card");
    card.href = url.href;
    card.dataset.bitrecsSku = item.sku;
    card.dataset.bitrecsRecId = rec;
    if (cardArm) card.dataset.bitrecsArm = cardArm;
    var source = clean(item.source) || clean(answer.source);
    if (source) card.dataset.bitrecsSource = source;
    var name = String(item.name || item.sku);
    var img = el("img", "img");
    img.loading = "lazy";
    img.decoding = "async";
    img.width = img.height = 180;
    img.alt = name;
    var src = image(item.image);
    if (src) img.src = src;
    var label = el("span", "name");
    label.textContent = name;
    var price = el("span", "price");
    price.textContent = money(item.price, answer, box);
    card.append(img, label, price);
    li.appendChild(card);
    slot(box, li, false);
    var add = li.querySelector(".bitrecs-add");
    if (add) {
      var button = el("button", "add");
      button.type = "button";
      button.textContent = "Add to cart";
      button.setAttribute("aria-label", "Add " + name + " to cart");
      li.replaceChild(button, add);
    }
    if (seen) seen.observe(card);
    return true;
  }

  function render(box, placement, limit, answer) {
    var items = answer && Array.isArray(answer.items) ? answer.items : [];
    var settings = (answer && answer.settings) || {};
    if (answer) {
      if (typeof answer.arm === "string") arm = clean(answer.arm);
      anonymous = anonymous !== false && settings.anonymous_events !== false;
    }
    box.classList.remove("bitrecs-busy");
    box.removeAttribute("aria-busy");
    var count = Math.min(limit, settings.count > 0 ? settings.count : limit);
    var slots = box.querySelectorAll(".bitrecs-item");
    var shown = 0;
    for (var i = 0; i < items.length && shown < count && shown < slots.length; i++) {
      if (items[i] && fill(box, slots[shown], items[i], answer)) shown++;
    }
    for (var j = shown; j < slots.length; j++) slots[j].className = "bitrecs-item bitrecs-wait"; // keeps the height
    if (!shown) {
      // Below the fold the space goes (nothing visible moves); in view it stays, empty, so nothing shifts.
      if (box.getBoundingClientRect().top >= w.innerHeight) box.textContent = "";
      else box.classList.add("bitrecs-empty");
      return;
    }
    var title = box.querySelector(".bitrecs-title");
    title.textContent = typeof settings.title === "string" && settings.title ? settings.title : TITLES[placement];
    box.querySelector(".bitrecs-list").setAttribute("aria-label", title.textContent);
  }

  function load(box) {
    var placement = box.dataset.bitrecsPlacement;
    var sku = box.dataset.bitrecsSku || "";
    if (!TITLES.hasOwnProperty(placement) || (placement === "product" && !sku)) return;
    var limit = Math.min(20, Math.max(1, parseInt(box.dataset.bitrecsLimit, 10) || 4));
    var params = new URLSearchParams({ site_key: siteKey, placement: placement, limit: String(limit) });
    if (sku) params.set("sku", sku);
    var sid = sessionId();
    if (sid) {
      params.set("sid", sid);
      var seenSkus = viewed().filter(function (s) {
        return s !== sku;
      });
      if (seenSkus.length) params.set("viewed", seenSkus.join(","));
      if (box.dataset.bitrecsCart) params.set("cart", box.dataset.bitrecsCart);
    }
    var gen = (gens.get(box) || 0) + 1;
    gens.set(box, gen);
    reserve(box, placement, limit);
    if (!bound.has(box)) {
      bound.add(box);
      box.addEventListener("click", onClick);
      box.addEventListener("auxclick", onClick);
    }
    // A long session (a full cart and viewed list) goes as a form body: servers refuse request lines over 4-8 KB.
    var query = params.toString();
    var long = query.length > 1800; // views.widget.MAX_GET_QUERY
    var url = api + "/api/v1/recommendations" + (long ? "" : "?" + query);
    fetch(url, long ? { method: "POST", body: params, credentials: "omit" } : { credentials: "omit" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .catch(function () {
        return null;
      })
      .then(function (answer) {
        if (gens.get(box) === gen) render(box, placement, limit, answer && typeof answer === "object" ? answer : null);
      })
      .catch(function () {});
  }

  function onClick(e) {
    var target = e.target instanceof Element ? e.target : null;
    var button = target && target.closest(".bitrecs-add");
    if (button) {
      var card = button.parentNode.querySelector(".bitrecs-card");
      var box = button.closest("[data-bitrecs-placement]");
      cardEvent("add_to_cart", card);
      button.dispatchEvent(
        new CustomEvent("bitrecs:add-to-cart", {
          bubbles: true,
          detail: {
            sku: card.dataset.bitrecsSku,
            rec_id: card.dataset.bitrecsRecId || "",
            arm: card.dataset.bitrecsArm || "",
            placement: box.dataset.bitrecsPlacement,
            url: card.href,
          },
        })
      );
      return;
    }
    var link = target && target.closest("a.bitrecs-card");
    if (link && (e.type === "click" || e.button === 1)) cardEvent("click", link);
  }

  // --- the product page: a view, and the rec id carried into the cart ---------------------------------------

  function pageSku() {
    var box = d.querySelector('[data-bitrecs-placement="product"][data-bitrecs-sku]');
    return cfg.productSku || (box && box.dataset.bitrecsSku) || "";
  }

  function field(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = el("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }

  // The cart form carries the rec id the shopper came with (a line property) and, after consent only, the
  // visitor's anonymous session id as a cart attribute: the order then counts for the visitor's arm, holdout included.
  function carry() {
    var sid = sessionId();
    // Shopify's (and the demo's) /cart/add forms, and WooCommerce's form.cart (its plugin renders the rec id itself).
    d.querySelectorAll('form[action*="/cart/add"], form.cart').forEach(function (form) {
      var shopify = /\/cart\/add/.test(form.getAttribute("action") || "");
      if (shopify && cameRec) field(form, "properties[_bitrecs_rec_id]", cameRec);
      if (shopify && cameRec && cameArm) field(form, "properties[_bitrecs_arm]", cameArm);
      var held = form.querySelector('input[name="attributes[_bitrecs_sid]"]');
      if (sid) field(form, "attributes[_bitrecs_sid]", sid);
      else if (held) held.remove();
    });
  }

  function refresh() {
    onConsent();
    style();
    carry();
    d.querySelectorAll("[data-bitrecs-placement]").forEach(load);
  }

  try {
    onConsent();
    ["visitorConsentCollected", "wp_listen_for_consent_change", "bitrecs:consent"].forEach(function (name) {
      d.addEventListener(name, onConsent);
    });
    if (w.Shopify && typeof w.Shopify.loadFeatures === "function") {
      w.Shopify.loadFeatures([{ name: "consent-tracking-api", version: "0.1" }], function (error) {
        if (!error) onConsent();
      });
    }
    d.addEventListener(
      "submit",
      function (e) {
        var form = e.target;
        if (form instanceof HTMLFormElement && /\/cart\/add/.test(form.getAttribute("action") || "")) {
          track("add_to_cart", pageSku(), cameRec, "", cameArm);
        }
      },
      true
    );
    d.addEventListener("visibilitychange", function () {
      if (d.visibilityState === "hidden") flush();
    });
    w.addEventListener("pagehide", flush);
    var sku = pageSku();
    if (sku) {
      track("view", sku, cameRec, "", cameArm);
      remember(sku);
    }
    refresh();
  } catch (e) {
    /* never break the page */
  }
  w.Bitrecs = Object.freeze({ refresh: refresh });
})(window, document);
