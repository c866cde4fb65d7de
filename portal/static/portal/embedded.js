/* The portal inside the Shopify admin. App Bridge (loaded first) adds "Authorization: Bearer <ID token>" to
 * every fetch to this origin, so pages are fetched and shown here rather than navigated to: the iframe keeps no
 * session cookie. Links and forms of a shown page that point at /portal/stores/<id>/<page> are replayed through
 * /portal/shopify/<page>, which answers for the ID token's shop only. */
(function () {
  "use strict";
  var script = document.currentScript;
  var storeUrl = script.getAttribute("data-store-url");
  var portalBase = script.getAttribute("data-portal-url").replace(/overview$/, "");
  var root = document.getElementById("portal");
  var problem = document.getElementById("problem");
  var current = "overview";

  function embeddedUrl(href) {
    var url = new URL(href, window.location.href);
    var match = url.origin === window.location.origin && url.pathname.match(/^\/portal\/stores\/\d+\/([a-z-]*)$/);
    if (!match) { return null; }
    return portalBase + (match[1] || "overview") + url.search;
  }

  function say(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  function show(html, hash) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var main = doc.querySelector(".portal-main") || doc.body;
    root.replaceChildren.apply(root, Array.prototype.map.call(main.childNodes, function (node) {
      return document.importNode(node, true);
    }));
    root.setAttribute("aria-busy", "false");
    var target = hash && document.getElementById(hash.slice(1));
    if (target) { target.scrollIntoView(); } else { window.scrollTo(0, 0); }
    runScripts(doc);
  }

  // A shown page's own static scripts (e.g. Chart.js and charts.js, which draw its canvases) run again, in order.
  function runScripts(doc) {
    var sources = Array.prototype.map.call(doc.querySelectorAll("script[src]"), function (tag) {
      return new URL(tag.getAttribute("src"), window.location.href);
    }).filter(function (url) {
      return url.origin === window.location.origin && url.pathname.indexOf("/static/") === 0;
    });
    sources.reduce(function (previous, url) {
      return previous.then(function () {
        return new Promise(function (resolve) {
          var tag = document.createElement("script");
          tag.src = url.href;
          tag.onload = tag.onerror = function () { tag.remove(); resolve(); };
          document.head.appendChild(tag);
        });
      });
    }, Promise.resolve());
  }

  function load(url, options) {
    root.setAttribute("aria-busy", "true");
    return fetch(url, options || {}).then(function (response) {
      return response.text().then(function (body) {
        if (response.status === 401) {
          say("Your Shopify session has ended: reload the app.");
          return;
        }
        say("");
        show(body, (options && options.hash) || "");
        var page = url.slice(portalBase.length).split("?")[0];
        current = page;
        document.querySelectorAll("#embedded-nav a").forEach(function (link) {
          if (link.getAttribute("data-page") === page) { link.setAttribute("aria-current", "page"); }
          else { link.removeAttribute("aria-current"); }
        });
      });
    }).catch(function () { say("Bitrecs could not be reached; try again in a moment."); });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[href]");
    if (!link) { return; }
    var page = link.getAttribute("data-page");
    var url = page ? portalBase + page : embeddedUrl(link.href);
    if (url) {
      event.preventDefault();
      load(url);
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!root.contains(form)) { return; }
    // getAttribute: a control named "action" or "method" shadows form.action and form.method.
    var action = new URL(form.getAttribute("action") || "", window.location.href);
    // A form without its own portal address (action="" or "#section") posts back to the page it is on.
    var url = embeddedUrl(action.href) || (action.pathname === window.location.pathname ? portalBase + current : null);
    if (!url) { return; }
    event.preventDefault();
    var data = new FormData(form, event.submitter || undefined);
    if ((form.getAttribute("method") || "get").toLowerCase() === "post") {
      load(url.split("?")[0], { method: "POST", body: data, hash: action.hash });
    } else {
      load(url.split("?")[0] + "?" + new URLSearchParams(data).toString());
    }
  });

  // The first call also completes a Shopify-managed installation (token exchange) and starts the catalog sync.
  fetch(storeUrl)
    .then(function (response) { return response.json().then(function (body) { return [response.ok, body]; }); })
    .then(function (answer) {
      if (!answer[0]) {
        say(answer[1].detail || "Bitrecs could not finish setting up; reload the app to try again.");
        return;
      }
      document.getElementById("status").textContent = answer[1].status;
      document.getElementById("site-key").textContent = answer[1].site_key;
      return load(portalBase + "overview");
    })
    .catch(function () { say("Bitrecs could not be reached; reload the app to try again."); });
}());
