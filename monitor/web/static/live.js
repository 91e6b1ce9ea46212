// Live pages and queue keys, with no build step and no framework.
//
// A `[data-live]` box re-fetches its content every few seconds: from the URL in data-live (a
// fragment), or, when data-live is empty, from the page's own URL (the box of the same id is taken
// out of the fetched page). The HTML comes from the server already escaped; it is parsed, never
// run, and a refresh is skipped while someone types or clicks inside the box. Elements with a
// `data-new-key` that were not there before get the class "new" until the person points at them.
// On the queue (`[data-keys]`), j/k select a post and c/a/r/o/Enter act on it. A `[data-async]` form
// inside the box is sent with fetch (Accept: application/json): the box refreshes at once and the
// answer's message goes into its `[data-flash]`, so an incident action never reloads the page.
(function () {
  "use strict";
  var box = document.querySelector("[data-live]");
  if (!box) return;
  var every = Math.max(1, parseFloat(box.getAttribute("data-every")) || 3) * 1000;
  var source = box.getAttribute("data-live");
  var known = {}, fresh = {}, last = box.innerHTML;
  var STORE = "flarewatch-selected";

  Array.prototype.forEach.call(box.querySelectorAll("[data-new-key]"), function (el) {
    known[el.getAttribute("data-new-key")] = el.getAttribute("data-version") || "";
  });

  function openDetails() {
    var open = {};
    Array.prototype.forEach.call(box.querySelectorAll("details[id]"), function (d) { if (d.open) open[d.id] = true; });
    return open;
  }

  function mark() {  // "new": not there before; "changed": there, but its data-version moved
    Array.prototype.forEach.call(box.querySelectorAll("[data-new-key]"), function (el) {
      var k = el.getAttribute("data-new-key"), v = el.getAttribute("data-version") || "";
      if (!(k in known)) fresh[k] = "new";
      else if (known[k] !== v && !fresh[k]) fresh[k] = "changed";
      known[k] = v;
      if (fresh[k]) el.classList.add(fresh[k]);
    });
  }

  box.addEventListener("mouseover", function (e) {  // seen: pointing at a marked item clears its mark
    var el = e.target.closest ? e.target.closest("[data-new-key].new, [data-new-key].changed") : null;
    if (el) { delete fresh[el.getAttribute("data-new-key")]; el.classList.remove("new", "changed"); }
  });

  function replace(html) {
    if (html === last) return;
    last = html;
    var open = openDetails(), chosen = selectedId();
    box.innerHTML = html;
    Object.keys(open).forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
    mark();
    if (chosen) select(box.querySelector('[data-post-id="' + chosen + '"]'), false);
    box.dispatchEvent(new CustomEvent("live:updated"));
  }

  var started = 0, shown = 0;  // a slow answer that started before a newer one is dropped
  function refresh() {
    var url = source ? source + location.search : location.pathname + location.search;
    var mine = ++started;
    return fetch(url, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (r) {
        if (r.redirected || r.status === 401) { location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        if (!source) {
          var found = new DOMParser().parseFromString(html, "text/html").getElementById(box.id);
          if (!found) return;
          html = found.innerHTML;
        }
        if (mine < shown) return;
        shown = mine;
        replace(html);
      })
      .catch(function () {});
  }

  function tick() {
    if (document.hidden || box.contains(document.activeElement)) { return setTimeout(tick, every); }
    refresh().then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);

  box.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.hasAttribute("data-async")) return;
    e.preventDefault();
    // getAttribute: a field named "action" would shadow form.action
    fetch(form.getAttribute("action"), { method: "POST", body: new FormData(form), credentials: "same-origin",
                                         headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().catch(function () { return { message: "Not done: HTTP " + r.status }; }); })
      .then(function (answer) {
        if (document.activeElement && box.contains(document.activeElement)) document.activeElement.blur();
        return refresh().then(function () {
          var flash = box.querySelector("[data-flash]");
          if (flash) flash.textContent = answer.message || "";
        });
      })
      .catch(function () {
        var flash = box.querySelector("[data-flash]");
        if (flash) flash.textContent = "Not done: the server could not be reached.";
      });
  });

  // -- queue keys -----------------------------------------------------------------------------
  if (!box.hasAttribute("data-keys")) return;
  function items() { return Array.prototype.slice.call(box.querySelectorAll("[data-post-id]")); }
  function selected() { return box.querySelector("[data-post-id].selected"); }
  function selectedId() { var s = selected(); return s ? s.getAttribute("data-post-id") : null; }
  function select(el, scroll) {
    items().forEach(function (i) { i.classList.remove("selected"); i.removeAttribute("aria-current"); });
    if (!el) return;
    el.classList.add("selected");
    el.setAttribute("aria-current", "true");
    try { sessionStorage.setItem(STORE, el.getAttribute("data-post-id")); } catch (e) {}
    if (scroll !== false && el.scrollIntoView) el.scrollIntoView({ block: "nearest" });
  }
  var remembered = null;
  try { remembered = sessionStorage.getItem(STORE); } catch (e) {}
  select((remembered && box.querySelector('[data-post-id="' + remembered + '"]')) || null, false);

  function act(el, key) {
    var target = el.querySelector('[data-key="' + key + '"]');
    if (target) { target.click(); return true; }
    if (key === "a") { location.href = el.querySelector("a.text").getAttribute("href") + "#answer"; return true; }
    return false;
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target, tag = t && t.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (t && t.isContentEditable)) return;
    var list = items(), current = selected(), index = current ? list.indexOf(current) : -1;
    if (e.key === "j" || e.key === "ArrowDown" && current) {
      select(list[Math.min(index + 1, list.length - 1)]);
    } else if (e.key === "k" || e.key === "ArrowUp" && current) {
      select(list[Math.max(index - 1, 0)]);
    } else if (current && (e.key === "c" || e.key === "a" || e.key === "r")) {
      if (!act(current, e.key)) return;
    } else if (current && e.key === "o") {
      var original = current.querySelector("a.original");
      if (!original) return;
      window.open(original.href, "_blank", "noopener,noreferrer");
    } else if (current && e.key === "Enter" && t === document.body) {
      location.href = current.querySelector("a.text").getAttribute("href");
    } else {
      return;
    }
    e.preventDefault();
  });
})();
