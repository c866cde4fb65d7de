// The embedded app home's script (a static file: the page's Content-Security-Policy allows no inline script).
// App Bridge adds "Authorization: Bearer <ID token>" to requests to this origin; for a shop being set up,
// this first call completes the installation (token exchange) and starts the first catalog sync.
fetch(document.currentScript.getAttribute("data-store-url"))
  .then(function (response) { return response.json().then(function (body) { return [response.ok, body]; }); })
  .then(function (answer) {
    var ok = answer[0], body = answer[1];
    if (ok) {
      document.getElementById("status").textContent = body.status;
      document.getElementById("site-key").textContent = body.site_key;
    } else {
      var problem = document.getElementById("problem");
      problem.textContent = body.detail || "Bitrecs could not finish setting up; reload the app to try again.";
      problem.hidden = false;
    }
  });
