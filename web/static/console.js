// The staff console: sign-in with password and TOTP (a browser session
// cookie), the caller's sessions kept live over the sessions websocket,
// the new-session form, revoke and extend; supervisors see and end their
// team's sessions; admins manage users. Supervisors and admins also get
// the Alerts view (alerts.js).
"use strict";

(() => {
  let me = null;
  let csrf = "";
  const sessions = new Map(); // id -> SessionView
  let socket = null;
  let ticker = null;
  let retry = 1000;
  // The gateway's clock minus the browser's, in ms, from the last answer's
  // Date header: the times in its JSON are on its clock, which runs ahead
  // of the wall clock after that was set back (session.SteadyClock).
  let offset = 0;
  const gatewayNow = () => Date.now() + offset;

  const fail = (msg) => {
    sg.text("error", msg);
    sg.show("error", !!msg);
  };

  // call runs an API request as the signed-in user; a 401 means the
  // session is over, so the page goes back to the sign-in form.
  const call = async (method, path, body) => {
    const r = await sg.api(method, path, body, method === "GET" ? "" : csrf);
    if (r.date) offset = sg.serverOffset(r.date);
    if (r.status === 401 && me) signedOut("Your sign-in has expired. Sign in again.");
    return r;
  };

  const signedOut = (msg) => {
    me = null;
    csrf = "";
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    sessions.clear();
    sg.alerts.stop();
    ["sessions", "users", "logout", "whoami", "loading"].forEach((id) => sg.show(id, false));
    sg.show("login", true);
    fail(msg || "");
    sg.$("login-user").focus();
  };

  const start = async () => {
    const r = await sg.api("GET", "/api/v1/me");
    if (r.status !== 200) { signedOut(); return; }
    signedIn(r.data);
  };

  const signedIn = (user) => {
    me = user;
    if (user.csrf_token) csrf = user.csrf_token;
    fail("");
    sg.show("loading", false);
    sg.show("login", false);
    sg.text("whoami", (user.display_name || user.name) + " (" + user.role + (user.team ? ", team " + user.team : "") + ")");
    sg.show("whoami", true);
    sg.show("logout", true);
    const staff = ["agent", "supervisor", "auditor"].includes(user.role);
    sg.show("sessions", staff);
    sg.show("new-session", user.role === "agent" || user.role === "supervisor");
    sg.text("sessions-h", user.role === "supervisor" ? "Team sessions" : user.role === "auditor" ? "All sessions" : "My sessions");
    if (staff) loadSessions();
    sg.show("users", user.role === "admin");
    if (user.role === "admin") loadUsers();
    sg.alerts.start(user, call);
  };

  sg.$("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {
      user: sg.$("login-user").value.trim(),
      password: sg.$("login-password").value,
      totp: sg.$("login-totp").value.trim(),
      browser: true,
    };
    const r = await sg.api("POST", "/api/v1/login", body);
    sg.$("login-password").value = "";
    sg.$("login-totp").value = "";
    if (r.status !== 200) { fail(r.data.error || "Sign-in failed."); return; }
    csrf = r.data.csrf_token;
    signedIn({ name: r.data.user, display_name: r.data.display_name, role: r.data.role, team: r.data.team, csrf_token: csrf });
  });

  sg.$("logout").addEventListener("click", async () => {
    await call("POST", "/api/v1/logout", {});
    signedOut("You have signed out.");
  });

  // Sessions

  const loadSessions = async () => {
    watch();
    const r = await call("GET", "/api/v1/sessions?limit=100");
    if (r.status !== 200) { fail(r.data.error || "Cannot list sessions."); return; }
    r.data.sessions.forEach((s) => sessions.set(s.id, s));
    renderSessions();
  };

  // watch keeps the list live: the gateway pushes every change of a
  // session this user may see. Auditors have no live feed.
  const watch = () => {
    if (socket || !me || me.role === "auditor") return;
    socket = new WebSocket(sg.wsURL("/api/v1/sessions/watch"));
    socket.onopen = () => { retry = 1000; sg.text("live-note", "Live: updates appear as they happen."); };
    socket.onmessage = (ev) => {
      let s;
      try { s = JSON.parse(ev.data); } catch (e) { return; }
      sessions.set(s.id, s);
      renderSessions();
    };
    socket.onclose = () => {
      socket = null;
      if (!me) return;
      sg.text("live-note", "Live updates interrupted; reconnecting…");
      setTimeout(() => { if (me) loadSessions(); }, retry);
      retry = Math.min(retry * 2, 30000);
    };
  };

  const button = (label, cls, onclick) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (cls) b.className = cls;
    b.addEventListener("click", onclick);
    return b;
  };

  // confirmButton asks for a second click before a destructive action
  // (a lock or a sign-in reset ends the user's sessions with customers):
  // the first click arms it for 5 seconds and says what the second does.
  const confirmButton = (label, cls, armed, onclick) => {
    let timer = null;
    const b = button(label, cls, () => {
      if (timer) {
        clearTimeout(timer);
        timer = null;
        b.classList.remove("armed");
        b.textContent = label;
        onclick();
        return;
      }
      b.classList.add("armed");
      b.textContent = armed;
      timer = setTimeout(() => { timer = null; b.classList.remove("armed"); b.textContent = label; }, 5000);
    });
    return b;
  };

  const timeText = (s) => {
    if (s.state === "active" && s.expires_at) {
      const left = (Date.parse(s.expires_at) - gatewayNow()) / 1000;
      return sg.clock(left) + " left" + (s.extension ? " (more time asked)" : "");
    }
    if (s.state === "requested") return "waiting for the customer";
    const by = s.ended_by ? " by " + s.ended_by : "";
    return (s.end_reason || "ended").replace("_", " ") + by;
  };

  const renderSessions = () => {
    const rows = sg.$("session-rows");
    const list = [...sessions.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
    rows.replaceChildren(...list.map((s) => {
      const tr = document.createElement("tr");
      tr.dataset.id = s.id;
      tr.dataset.state = s.state;
      const cell = (text, cls) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
        return td;
      };
      cell(s.customer);
      cell(s.agent_name || s.agent);
      cell(s.state, "state state-" + s.state);
      cell((s.scopes || []).join(", "));
      cell(timeText(s), "time");
      const act = cell("", "row-actions");
      const mine = me && s.agent === me.name;
      if (me && me.role !== "auditor" && s.state !== "ended") {
        act.append(button(mine ? "Revoke" : "End session", "danger revoke", () => act1(s, "revoke")));
        if (s.state === "active") act.append(button("Extend 15 min", "extend", () => act1(s, "extend", { by: "15m" })));
        if (s.state === "active" && (s.scopes || []).includes("view")) act.append(button("Watch screen", "watch", () => sgScreen.open(s)));
      }
      return tr;
    }));
    const anyActive = list.some((s) => s.state === "active");
    if (anyActive && !ticker) ticker = setInterval(() => {
      document.querySelectorAll("#session-rows tr[data-state=active] td.time").forEach((td) => {
        const s = sessions.get(td.parentElement.dataset.id);
        if (s) td.textContent = timeText(s);
      });
    }, 1000);
    if (!anyActive && ticker) { clearInterval(ticker); ticker = null; }
  };

  const act1 = async (s, what, body) => {
    const r = await call("POST", "/api/v1/sessions/" + encodeURIComponent(s.id) + "/" + what, body || {});
    if (r.status !== 200) { fail(r.data.error || "Failed."); return; }
    fail("");
    sessions.set(r.data.id, r.data);
    renderSessions();
  };

  sg.$("new-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const scopes = [];
    ["view", "chat", "shell"].forEach((k) => { if (sg.$("new-" + k).checked) scopes.push(k); });
    if (sg.$("new-tunnel").checked) scopes.push("tunnel:" + sg.$("new-ports").value.replace(/\s+/g, ""));
    const body = { customer: sg.$("new-customer").value.trim(), scopes, duration: sg.$("new-duration").value };
    const reason = sg.$("new-reason").value.trim();
    if (reason) body.reason = reason;
    const r = await call("POST", "/api/v1/sessions", body);
    if (r.status !== 201) { fail(r.data.error || "Cannot create the session."); return; }
    fail("");
    sg.$("created-link").value = r.data.consent_url;
    sg.text("created-code", r.data.verification_code);
    sg.text("copied", "");
    sg.show("created", true);
    const r2 = await call("GET", "/api/v1/sessions/" + encodeURIComponent(r.data.id));
    if (r2.status === 200) { sessions.set(r2.data.id, r2.data); renderSessions(); }
  });

  const copy = async (text, what) => {
    try {
      await navigator.clipboard.writeText(text);
      sg.text("copied", what + " copied.");
    } catch (e) {
      sg.text("copied", "Copy failed; select the text and copy it by hand.");
    }
  };
  sg.$("copy-link").addEventListener("click", () => copy(sg.$("created-link").value, "Link"));
  sg.$("copy-code").addEventListener("click", () => copy(sg.$("created-code").textContent, "Code"));
  sg.$("copy-enroll").addEventListener("click", () => navigator.clipboard.writeText(sg.$("enroll-link").value).catch(() => {}));

  // Users (admin)

  const loadUsers = async () => {
    const r = await call("GET", "/api/v1/users");
    if (r.status !== 200) { fail(r.data.error || "Cannot list users."); return; }
    const rows = sg.$("user-rows");
    rows.replaceChildren(...r.data.users.map((u) => {
      const tr = document.createElement("tr");
      tr.dataset.user = u.name;
      tr.dataset.role = u.role;
      // A lockout after failed sign-ins ends by itself at locked_until;
      // Unlock ends it now, as it ends an admin's lock.
      const lockedOut = !u.locked && u.locked_until && Date.parse(u.locked_until) > gatewayNow();
      tr.dataset.status = u.locked ? "locked" : lockedOut ? "locked-out" : u.enrolled ? "active" : "pending";
      const cell = (text, cls) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
        return td;
      };
      cell(u.name);
      cell(u.display_name);
      cell(u.team || "");
      const roleTd = cell("");
      const sel = document.createElement("select");
      sel.setAttribute("aria-label", "role of " + u.name);
      sel.className = "role";
      ["agent", "supervisor", "auditor", "admin"].forEach((r) => {
        const o = document.createElement("option");
        o.textContent = r;
        o.selected = r === u.role;
        sel.append(o);
      });
      roleTd.append(sel, button("Set role", "set-role", () => userAct(u.name, "", { role: sel.value })));
      cell(u.locked ? "locked" : lockedOut
        ? "locked out after failed sign-ins until " + new Date(u.locked_until).toLocaleTimeString()
        : u.enrolled ? "active" : "not enrolled yet", "status");
      const act = cell("");
      if (u.name !== me.name) {
        if (u.locked || lockedOut) act.append(button("Unlock", "unlock", () => userAct(u.name, "/unlock", {})));
        if (!u.locked) {
          act.append(confirmButton("Lock", "danger lock", "Click again: lock " + u.name + " and end their sessions",
            () => userAct(u.name, "/lock", {})));
        }
        // A lost phone, a forgotten password, an expired or lost link.
        act.append(confirmButton("Reset sign-in", "danger reenroll",
          "Click again: sign " + u.name + " out everywhere, end their sessions and make a new link",
          () => reenroll(u.name)));
      }
      return tr;
    }));
  };

  const userAct = async (name, what, body) => {
    const r = await call("POST", "/api/v1/users/" + encodeURIComponent(name) + what, body);
    if (r.status !== 200) { fail(r.data.error || "Failed."); return; }
    fail("");
    loadUsers();
  };

  // reenroll resets a user's password and authenticator (their sessions
  // and sign-ins end) and shows the new one-time link for them.
  const reenroll = async (name) => {
    const r = await call("POST", "/api/v1/users/" + encodeURIComponent(name) + "/reenroll", {});
    if (r.status !== 200) { fail(r.data.error || "Cannot reset the sign-in."); return; }
    fail("");
    showEnrollLink(name, r.data.enroll_url);
    loadUsers();
  };

  const showEnrollLink = (name, url) => {
    sg.text("enroll-user", name);
    sg.$("enroll-link").value = url;
    sg.show("enroll-result", true);
  };

  sg.$("users-refresh").addEventListener("click", () => loadUsers());

  sg.$("user-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { name: sg.$("user-name").value.trim(), role: sg.$("user-role").value };
    const dn = sg.$("user-display").value.trim(), team = sg.$("user-team").value.trim();
    if (dn) body.display_name = dn;
    if (team) body.team = team;
    const r = await call("POST", "/api/v1/users", body);
    if (r.status !== 201) { fail(r.data.error || "Cannot add the user."); return; }
    fail("");
    showEnrollLink(r.data.user.name, r.data.enroll_url);
    sg.$("user-form").reset();
    loadUsers();
  });

  start();
})();
