// distkv-code status page: keep the page live (server-sent events from
// /events).  Without JavaScript the page still reads: it is plain HTML.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-events");
  var live = document.getElementById("live");

  function fromHTML(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  // relative times next to every <time data-t="UNIX">: "12 s ago", "in 3 s"
  function relTimes() {
    var now = Date.now() / 1000;
    var els = document.querySelectorAll("time[data-t]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i], rel = el.nextElementSibling;
      if (!rel || !rel.classList.contains("rel")) continue;
      var d = parseFloat(el.getAttribute("data-t")) - now;
      rel.textContent = d >= 0.5 ? "in " + Math.round(d) + " s" : Math.round(-d) + " s ago";
    }
  }

  function applyJobs(data) {
    var table = document.getElementById("jobs-table");
    if (!table) return;
    data.jobs.forEach(function (j) {
      var old = null, bodies = table.tBodies;
      for (var i = 0; i < bodies.length; i++) {
        if (bodies[i].getAttribute("data-key") === j.key) { old = bodies[i]; break; }
      }
      if (!j.html) { if (old) old.remove(); return; }
      var n = fromHTML(j.html);
      n.classList.add("flash");
      if (old) { old.replaceWith(n); return; }
      var next = null;
      for (var k = 0; k < bodies.length; k++) {
        if (bodies[k].getAttribute("data-sort") > j.sort) { next = bodies[k]; break; }
      }
      table.insertBefore(n, next);
    });
  }

  function applySections(data) {
    Object.keys(data).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.innerHTML = data[id];
    });
  }

  // confirm before destructive actions (forms with data-confirm)
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  setInterval(relTimes, 1000);
  if (!url || !window.EventSource) return;
  var es = new EventSource(url);
  es.onopen = function () { if (live) { live.hidden = false; live.textContent = "live"; live.className = "conn"; } };
  es.onerror = function () { if (live) { live.textContent = "reconnecting…"; live.className = "conn off"; } };
  es.addEventListener("reload", function () { window.location.reload(); });
  es.addEventListener("jobs", function (e) { applyJobs(JSON.parse(e.data)); relTimes(); });
  es.addEventListener("section", function (e) { applySections(JSON.parse(e.data)); relTimes(); });
})();
