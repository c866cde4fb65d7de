/* Draws every <canvas data-chart="ID"> from the JSON in <script type="application/json" id="ID"> (Django's
   json_script): {"type": "line"|"bar", "labels": [...], "datasets": [{"label", "data", ...}], "options"?: {...}}.
   No inline script, so the pages keep a strict Content-Security-Policy. */
(function () {
  "use strict";
  var palette = ["#0b5fff", "#1a7f37", "#bf3989", "#9a6700", "#6639ba", "#cf222e", "#0a7ea4"];

  function draw(canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source || typeof window.Chart === "undefined") return;
    var spec = JSON.parse(source.textContent);
    (spec.datasets || []).forEach(function (dataset, i) {
      var colour = dataset.color || palette[i % palette.length];
      if (!dataset.borderColor) dataset.borderColor = colour;
      if (!dataset.backgroundColor) dataset.backgroundColor = spec.type === "bar" ? colour : colour + "33";
    });
    var options = Object.assign(
      { responsive: true, maintainAspectRatio: false, animation: false, interaction: { mode: "index", intersect: false } },
      spec.options || {}
    );
    canvas.bitrecsChart = new window.Chart(canvas, { type: spec.type || "line", data: { labels: spec.labels, datasets: spec.datasets }, options: options });
    canvas.setAttribute("data-chart-drawn", String((spec.datasets || []).length));
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
