// Live queue: re-fetch the server-rendered list every few seconds (no build step, no framework).
// The fragment comes from the server already escaped; it is skipped while someone types in it.
(function () {
  "use strict";
  var box = document.querySelector("[data-live]");
  if (!box) return;
  var every = Math.max(1, parseFloat(box.getAttribute("data-every")) || 3) * 1000;
  var last = null;
  function tick() {
    if (document.hidden || box.contains(document.activeElement)) { return setTimeout(tick, every); }
    fetch(box.getAttribute("data-live") + location.search, { credentials: "same-origin" })
      .then(function (r) {
        if (r.redirected || r.status === 401) { location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== last) { last = html; box.innerHTML = html; }
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
