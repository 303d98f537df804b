// The console's Alerts view, for supervisors and admins: the detector's
// alerts (supervisors see their team's agents only), filtered by state and
// severity, each with an incident note and Acknowledge and Resolve. The
// list is polled every 5 seconds, and only while the view is open and the
// tab is visible. console.js calls sg.alerts.start after sign-in and
// sg.alerts.stop at sign-out. Everything the API returns is written as
// text.
"use strict";

sg.alerts = (() => {
  const PERIOD = 5000;
  let user = null;   // the signed-in user, while a supervisor or admin
  let call = null;   // console.js's API call, with CSRF and 401 handling
  let enabled = false; // the gateway has detection on
  let timer = null;
  let loading = false;
  const alerts = new Map(); // id -> Alert, as last answered
  const rows = new Map();   // id -> {tr, cells, note}: rows keep their note inputs across refreshes

  const problem = (msg) => {
    sg.text("alerts-error", msg);
    sg.show("alerts-error", !!msg);
  };

  const open = () => !!user && enabled && location.hash === "#alerts";

  // view shows the Alerts view or the console's own, and polls only
  // while the Alerts view is open and visible.
  const view = () => {
    const on = open();
    document.body.classList.toggle("view-alerts", on);
    sg.show("alerts", on);
    sg.$("view-alerts").setAttribute("aria-current", on ? "page" : "false");
    sg.$("view-main").setAttribute("aria-current", on ? "false" : "page");
    const poll = on && !document.hidden;
    if (poll && !timer) {
      load();
      timer = setInterval(load, PERIOD);
    } else if (!poll && timer) {
      clearInterval(timer);
      timer = null;
    }
  };

  const query = () => {
    const q = new URLSearchParams();
    const st = sg.$("alerts-state").value, sev = sg.$("alerts-severity").value;
    if (st && st !== "unresolved") q.set("state", st);
    if (sev) q.set("severity", sev);
    const s = q.toString();
    return "/api/v1/alerts" + (s ? "?" + s : "");
  };

  const load = async () => {
    if (!open() || loading) return;
    loading = true;
    const asked = query();
    const r = await call("GET", asked).finally(() => { loading = false; });
    if (!open()) return; // signed out or left meanwhile
    if (asked !== query()) { load(); return; } // refiltered meanwhile
    if (r.status !== 200) {
      problem(r.data.error || "Cannot list alerts.");
      sg.text("alerts-note", "");
      return;
    }
    problem("");
    alerts.clear();
    (r.data.alerts || []).forEach((a) => alerts.set(a.id, a));
    render();
    sg.text("alerts-note", "Updated " + new Date().toLocaleTimeString() + "; refreshes every 5 seconds while this page is open.");
  };

  const shown = (a) => sg.$("alerts-state").value !== "unresolved" || a.state !== "resolved";

  const when = (iso) => {
    const t = Date.parse(iso || "");
    return isNaN(t) ? "" : new Date(t).toLocaleString();
  };

  const stateText = (a) => {
    let s = a.state;
    if (a.by) s += " by " + a.by;
    if (a.note) s += ": " + a.note;
    return s;
  };

  const button = (label, cls, onclick) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.className = cls;
    b.addEventListener("click", onclick);
    return b;
  };

  // row returns the row of alert id, made once: the note input inside it
  // keeps what is being typed while the list refreshes.
  const row = (id) => {
    let r = rows.get(id);
    if (r) return r;
    const tr = document.createElement("tr");
    tr.dataset.id = id;
    const cells = {};
    ["severity", "agent", "kind", "summary", "time", "state", "count", "act"].forEach((k) => {
      const td = document.createElement("td");
      td.className = k;
      tr.append(td);
      cells[k] = td;
    });
    const note = document.createElement("input");
    note.className = "note";
    note.maxLength = 1024;
    note.placeholder = "Incident note";
    const ack = button("Acknowledge", "ack", () => act(id, "ack", note));
    const resolve = button("Resolve", "primary resolve", () => act(id, "resolve", note));
    cells.act.append(note, ack, resolve);
    r = { tr, cells, note, ack, resolve };
    rows.set(id, r);
    return r;
  };

  const render = () => {
    const list = [...alerts.values()].filter(shown)
      .sort((a, b) => (b.raised || "").localeCompare(a.raised || ""));
    const keep = new Set(list.map((a) => a.id));
    for (const id of rows.keys()) if (!keep.has(id)) rows.delete(id);
    const trs = list.map((a) => {
      const r = row(a.id);
      const c = r.cells;
      r.tr.dataset.state = a.state;
      r.tr.dataset.severity = a.severity;
      r.tr.dataset.agent = a.agent;
      r.tr.dataset.kind = a.kind;
      c.severity.textContent = a.severity;
      c.severity.className = "severity sev-" + a.severity;
      c.agent.textContent = a.agent;
      c.kind.textContent = String(a.kind || "").replaceAll("_", " ");
      c.summary.textContent = a.summary;
      c.time.textContent = when(a.time);
      c.time.title = "raised " + when(a.raised) + (a.updated && a.updated !== a.raised ? "; last change " + when(a.updated) : "");
      c.state.textContent = stateText(a);
      c.state.className = "state alert-" + a.state;
      c.count.textContent = String(a.count || 1);
      r.note.setAttribute("aria-label", "incident note for the " + a.kind + " alert about " + a.agent);
      r.ack.hidden = a.state !== "open";
      r.resolve.hidden = a.state === "resolved";
      r.note.hidden = a.state === "resolved";
      return r.tr;
    });
    // Replace the rows only when their order changed, so focus and
    // typing in a note survive a refresh.
    const body = sg.$("alert-rows");
    const same = body.children.length === trs.length && trs.every((tr, i) => body.children[i] === tr);
    if (!same) body.replaceChildren(...trs);
    sg.show("alerts-empty", trs.length === 0);
  };

  const act = async (id, what, note) => {
    const r0 = rows.get(id);
    if (r0) { r0.ack.disabled = true; r0.resolve.disabled = true; }
    const r = await call("POST", "/api/v1/alerts/" + encodeURIComponent(id) + "/" + what, { note: note.value.trim() });
    if (r0) { r0.ack.disabled = false; r0.resolve.disabled = false; }
    if (r.status !== 200) { problem(r.data.error || "Failed."); return; }
    problem("");
    note.value = "";
    alerts.set(r.data.id, r.data);
    render();
  };

  const start = async (u, caller) => {
    stop();
    if (u.role !== "supervisor" && u.role !== "admin") return;
    user = u;
    call = caller;
    sg.text("view-main", u.role === "admin" ? "Users" : "Sessions");
    // One request tells whether this gateway runs the detector.
    const r = await call("GET", "/api/v1/alerts?state=open");
    if (user !== u) return;
    enabled = r.status !== 404;
    sg.show("views", enabled);
    view();
  };

  const stop = () => {
    user = null;
    call = null;
    enabled = false;
    alerts.clear();
    rows.clear();
    sg.$("alert-rows").replaceChildren();
    sg.show("views", false);
    problem("");
    view();
  };

  window.addEventListener("hashchange", view);
  document.addEventListener("visibilitychange", view);
  sg.$("alerts-refresh").addEventListener("click", () => load());
  ["alerts-state", "alerts-severity"].forEach((id) => sg.$(id).addEventListener("change", () => {
    alerts.clear();
    render();
    load();
  }));
  sg.$("alerts-filter").addEventListener("submit", (ev) => ev.preventDefault());

  return { start, stop };
})();
