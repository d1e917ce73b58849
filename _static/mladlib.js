/* Two small reading aids, once the page has loaded.
   1. Check cells (tagged hide-input, first line "# checks: <what>") get a toggle that
      says what it holds ("Checks: <what>") instead of myst-nb's one label for every
      hidden input, "Show code cell source".
   2. A figure opens at its full size on click (phones shrink figures to a few pixels of
      text); a click or Escape closes it. */
(function () {
  "use strict";
  var CHECKS = /^#\s*checks:\s*(.*)$/i;

  function labelCheckToggles() {
    document.querySelectorAll("details.hide.above-input").forEach(function (d) {
      var pre = d.querySelector("div.cell_input pre");
      if (!pre) { return; }
      var first = (pre.textContent || "").split("\n")[0].trim();
      var m = CHECKS.exec(first);
      if (!m) { return; }
      var what = m[1].replace(/\s+$/, "");
      var shown = d.querySelector("summary .collapsed");
      var hidden = d.querySelector("summary .expanded");
      if (shown) { shown.textContent = "Checks: " + what; }
      if (hidden) { hidden.textContent = "Hide checks: " + what; }
      d.classList.add("mladlib-checks");
    });
  }

  function zoomable() {
    document.querySelectorAll("div.cell_output img").forEach(function (img) {
      img.title = img.title || "Click to open at full size";
      img.addEventListener("click", function () {
        var box = document.createElement("div");
        box.className = "mladlib-zoom";
        box.setAttribute("role", "dialog");
        box.setAttribute("aria-label", img.alt || "figure");
        var big = document.createElement("img");
        big.src = img.currentSrc || img.src;
        big.alt = img.alt;
        box.appendChild(big);
        function close() {
          box.remove();
          document.removeEventListener("keydown", onKey);
        }
        function onKey(e) { if (e.key === "Escape") { close(); } }
        box.addEventListener("click", close);
        document.addEventListener("keydown", onKey);
        document.body.appendChild(box);
      });
    });
  }

  function init() { labelCheckToggles(); zoomable(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
