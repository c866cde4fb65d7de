// The choice the demo's consent tool recorded, as the signal the widget reads (window.bitrecsConsent); loaded
// before /widget.js. A static file: the page's Content-Security-Policy allows no inline script.
(function () {
  var choice = document.currentScript.getAttribute("data-consent");
  if (choice === "true" || choice === "false") window.bitrecsConsent = choice === "true";
})();
