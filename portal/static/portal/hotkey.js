// The hotkey sign-in page: ask for a message, show the commands that sign it, send the pasted signature.
// Same-origin JSON calls carrying the page's CSRF token (portal.views.hotkey explains the CSRF choice).
(function () {
  "use strict";
  var root = document.getElementById("hotkey-signin");
  if (!root) return;
  var challengeForm = document.getElementById("hotkey-challenge-form");
  var verifyForm = document.getElementById("hotkey-verify-form");
  var address = document.getElementById("hotkey-address");
  var signature = document.getElementById("hotkey-signature");
  var status = document.getElementById("hotkey-status");
  var step = document.getElementById("hotkey-step-sign");
  var token = challengeForm.querySelector("input[name=csrfmiddlewaretoken]").value;
  var hotkey = "";

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "muted";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function show(id, text) {
    var element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  challengeForm.addEventListener("submit", function (event) {
    event.preventDefault();
    hotkey = address.value.trim();
    say("Asking for a message…", false);
    post(challengeForm.action, { hotkey: hotkey }).then(function (answer) {
      if (!answer.ok) {
        step.hidden = true;
        say(answer.data.detail || "The message could not be made (" + answer.status + ").", true);
        return;
      }
      show("hotkey-message", answer.data.message);
      show("hotkey-btcli", answer.data.commands.btcli);
      show("hotkey-python", answer.data.commands.python);
      show("hotkey-local", answer.data.commands.local);
      step.hidden = false;
      say("Sign the message before " + new Date(answer.data.expires_at).toLocaleTimeString() + ", then paste the signature.", false);
      signature.focus();
    }, function () { say("The server could not be reached. Check your connection and try again.", true); });
  });

  verifyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    say("Checking the signature…", false);
    post(verifyForm.action, { hotkey: hotkey, signature: signature.value.trim() }).then(function (answer) {
      if (!answer.ok) {
        say(answer.data.detail || "The sign-in failed (" + answer.status + ").", true);
        return;
      }
      say("Signed in as " + answer.data.role + ". Opening your page…", false);
      window.location.assign(answer.data.redirect);
    }, function () { say("The server could not be reached. Check your connection and try again.", true); });
  });

  root.addEventListener("click", function (event) {
    var target = event.target.closest("[data-copy]");
    if (!target || !navigator.clipboard) return;
    var source = document.getElementById(target.getAttribute("data-copy"));
    navigator.clipboard.writeText(source.textContent).then(function () { say("Copied.", false); }, function () {});
  });
})();
