// eventbus console: live refresh and actions through the JSON API. Plain JavaScript;
// every page is readable without it.
(function () {
  "use strict";
  var base = document.body.getAttribute("data-base") || "/";
  var KEY = "eventbus.refresh", PAUSED = "eventbus.paused";
  var timer = null, busy = false;

  function $(id) { return document.getElementById(id); }

  function toast(text, bad) {
    var t = $("toast");
    t.textContent = text;
    t.className = bad ? "bad" : "";
    t.hidden = false;
    clearTimeout(t._h);
    t._h = setTimeout(function () { t.hidden = true; }, bad ? 9000 : 4000);
  }

  // refresh replaces <main> with the same page fetched again.
  function refresh() {
    if (busy) return Promise.resolve();
    var a = document.activeElement;
    if (a && a.closest && a.closest("#main") && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName) && a.type !== "checkbox") return Promise.resolve();
    if (checked().length) return Promise.resolve(); // keep the operator's checked rows
    busy = true;
    return fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        if (fresh) $("main").replaceWith(fresh);
        setup();
        var s = $("stamp");
        if (s) s.textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  function schedule() {
    clearInterval(timer);
    timer = null;
    var sel = $("refresh"), pause = $("pause");
    var paused = localStorage.getItem(PAUSED) === "1";
    if (pause) pause.textContent = paused ? "Resume" : "Pause";
    if (paused || !sel) return;
    timer = setInterval(refresh, parseFloat(sel.value) * 1000);
  }

  function initLive() {
    var live = $("live"), sel = $("refresh"), pause = $("pause");
    if (!live || !sel) return;
    live.hidden = false;
    var saved = localStorage.getItem(KEY);
    if (saved && sel.querySelector('option[value="' + saved + '"]')) sel.value = saved;
    sel.addEventListener("change", function () { localStorage.setItem(KEY, sel.value); schedule(); });
    pause.addEventListener("click", function () {
      localStorage.setItem(PAUSED, localStorage.getItem(PAUSED) === "1" ? "0" : "1");
      schedule();
    });
    schedule();
  }

  // setup shows the parts of a page that need JavaScript.
  function setup() {
    document.body.classList.add("js");
    document.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = !navigator.clipboard; });
    var all = $("pick-all");
    if (all) all.hidden = false;
    countSelected();
  }

  function checked() { return document.querySelectorAll('#events input[name="id"]:checked'); }

  function countSelected() {
    var c = $("sel-count");
    if (!c) return;
    var n = checked().length;
    c.textContent = n ? n + " checked" : "none checked";
    document.querySelectorAll("#selected-actions button").forEach(function (b) { b.disabled = !n; });
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.id === "pick-all") {
      document.querySelectorAll('#events input[name="id"]').forEach(function (c) { c.checked = t.checked; });
    }
    if (t.id === "pick-all" || t.name === "id") countSelected();
  });

  // A click on an event row opens the event (links and checkboxes keep their own).
  document.addEventListener("click", function (e) {
    var row = e.target.closest && e.target.closest("#events tr.event");
    if (!row || e.target.closest("a, input, button, label, .pick")) return;
    if (window.getSelection && String(window.getSelection())) return; // selecting text
    var a = row.querySelector("a.id");
    if (a) location.href = a.href;
  });

  function post(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (res) {
      return res.json().catch(function () { return { error: "HTTP " + res.status }; }).then(function (j) {
        if (!res.ok) throw new Error(j.error || ("HTTP " + res.status));
        return j;
      });
    });
  }

  function waitCommand(id, deadline) {
    return fetch(base + "api/commands/" + encodeURIComponent(id), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (c) {
        if (c.status === "succeeded" || c.status === "failed" || c.status === "expired" || Date.now() > deadline) return c;
        return new Promise(function (ok) { setTimeout(ok, 300); }).then(function () { return waitCommand(id, deadline); });
      });
  }

  // settle refreshes a few times while a change lands (a heartbeat or a command poll).
  function settle() {
    [300, 1000, 2000, 3500, 6000].forEach(function (ms) { setTimeout(refresh, ms); });
  }

  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (!f.matches || !f.matches("form.act")) return;
    e.preventDefault();
    var sub = e.submitter;
    var action = (sub && sub.getAttribute("formaction")) || f.action;
    var body = new URLSearchParams(new FormData(f));
    body.delete("next");
    var verb = (sub && sub.getAttribute("data-bulk")) || f.getAttribute("data-bulk");
    if (f.id === "selection" && !body.getAll("id").length) { toast("Check the rows to act on first.", true); return; }
    var start = Promise.resolve(true);
    if (verb) {
      var dry = new URLSearchParams(body);
      dry.set("dry_run", "1");
      start = post(action, dry).then(function (r) {
        if (!r.matched) { toast("No event matches this filter."); return false; }
        var noun = verb === "Replay" ? "message" : "event";
        return confirm(verb + " " + r.matched + " " + noun + (r.matched === 1 ? "" : "s") +
          (r.rows !== r.matched ? " (" + r.rows + " rows)" : "") + (f.id === "selection" ? " of the checked rows?" : " matching the current filter?") +
          (r.failed ? "\n" + r.failed + " of them " + (r.failed === 1 ? "is" : "are") + " no longer in the store and will count as failed." : ""));
      });
    } else if (f.getAttribute("data-confirm")) {
      start = Promise.resolve(confirm(f.getAttribute("data-confirm")));
    }
    start.then(function (go) {
      if (!go) return;
      return post(action, body).then(function (r) {
        if (verb) {
          toast(verb + ": " + r.matched + " matched, " + r.done + " done, " + r.enqueued + " sent to bus processes, " + r.failed + " failed" +
            (r.errors && r.errors.length ? "\n" + r.errors[0] : ""), r.failed > 0);
          settle();
          return;
        }
        if (r.ok === false) { toast("Failed: " + r.error, true); settle(); return; }
        if (r.deleted) { location.href = base + (f.getAttribute("data-then") || "events"); return; }
        if (r.command) {
          toast("Sent to a bus process (command " + r.command.id + ")…");
          return waitCommand(r.command.id, Date.now() + 30000).then(function (c) {
            if (c.status === "succeeded") toast("Done: " + c.kind + " succeeded" + (c.result ? " → " + c.result : ""));
            else if (c.status === "failed" || c.status === "expired") toast(c.kind + " " + c.status + ": " + c.error, true);
            else toast("Still " + c.status + "; see the Consumers page for its outcome.");
            settle();
          });
        }
        if (r.desired) toast(r.consumer + " → " + r.desired + (r.process ? " in " + r.process : " everywhere") + "; lands within a heartbeat");
        else toast("Done" + (r.result ? ": " + r.result : "") + ".");
        settle();
      });
    }).catch(function (err) { toast(err.message, true); });
  });

  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-copy]");
    if (!b) return;
    var el = $(b.getAttribute("data-copy"));
    if (el && navigator.clipboard) navigator.clipboard.writeText(el.textContent).then(function () { toast("Copied."); });
  });

  setup();
  initLive();
})();
