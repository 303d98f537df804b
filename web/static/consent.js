// The customer's consent page: shows who asks for what, lets the customer
// narrow and approve or deny, then shows the live session with a Stop
// button until it ends. The link is bound to this browser by the cookie
// the first GET sets; every POST sends the CSRF token from that GET.
"use strict";

(() => {
  const token = location.pathname.split("/")[2] || "";
  const base = "/api/v1/consent/" + encodeURIComponent(token);
  let csrf = "";
  let view = null;
  let offset = 0;       // server clock minus local clock, in ms
  let ticker = null;
  let socket = null;
  let stoppedHere = false;
  let ended = false;
  // asked is the extension request the prompt shows; the answer names it,
  // so a yes cannot grant another request that arrived in the meantime.
  let asked = null;
  // retries counts the refreshes since the socket last brought a view;
  // retryTimer is the one pending.
  let retries = 0;
  let retryTimer = null;

  const problem = (msg) => {
    sg.show("loading", false);
    sg.text("problem", msg);
    sg.show("problem", true);
  };

  // reconnecting shows or clears the calm notice that the page lost the
  // gateway and keeps trying; what the page shows stays as it was.
  const reconnecting = (on) => {
    sg.text("reconnecting", on ? "Connection to the gateway lost; reconnecting…" : "");
    sg.show("reconnecting", on);
  };

  // retry fetches the session again after a dropped socket or a refresh
  // that got no answer, a 5xx or a 429: after 1 s, 2 s, 4 s … at most
  // 15 s, each give or take 10% so that pages cut off together do not all
  // come back in the same instant.
  const retry = () => {
    if (ended || retryTimer) return;
    reconnecting(true);
    const delay = Math.min(1000 * 2 ** retries, 15000) * (0.9 + 0.2 * Math.random());
    retries++;
    retryTimer = setTimeout(() => { retryTimer = null; if (!ended) refresh(); }, delay);
  };

  const explain = (status, data) => {
    const err = (data && data.error) || "";
    if (status === 403 && /another client|not opened in this browser/.test(err)) {
      return "This link is already open in another browser, so it cannot be used here. " +
        "A link works only in the browser that opened it first. If that was not you, tell the organisation.";
    }
    if (status === 403) return "The gateway refused this (" + err + "). Reload the page and try again.";
    if (status === 404) return "This link is not valid. Check that you copied all of it.";
    if (status === 410) return "This link has expired. Ask the agent for a new one.";
    if (status === 429) return "Too many attempts. Wait a minute and reload the page.";
    return err || "Something went wrong (" + status + "). Reload the page to try again.";
  };

  const renderRequest = (v) => {
    sg.text("org", v.agent.org);
    sg.text("org2", v.agent.org);
    sg.text("agent", v.agent.name);
    sg.text("code", v.verification_code);
    sg.text("duration", sg.words(sg.goDuration(v.duration)));
    sg.show("reason-line", !!v.reason);
    sg.text("reason", v.reason);
    if (v.consent_expires_at) {
      const t = new Date(Date.parse(v.consent_expires_at) - offset);
      sg.text("expires-line", "This request expires at " + t.toLocaleTimeString() + " if you do nothing. Nothing is allowed unless you approve.");
    }
    // Drawn again (after a dropped connection), the list keeps what the
    // customer unticked: a redraw must never tick a scope again behind
    // their back.
    const list = sg.$("scopes");
    const unticked = new Set([...list.querySelectorAll("input:not(:checked)")].map((b) => b.value));
    list.replaceChildren();
    (v.requested_scopes || v.scopes || []).forEach((scope, i) => {
      const li = document.createElement("li");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = !unticked.has(scope);
      box.id = "scope-" + i;
      box.value = scope;
      box.name = "scope";
      const label = document.createElement("label");
      label.htmlFor = box.id;
      label.textContent = sg.scopeWords(scope);
      li.append(box, label);
      list.append(li);
    });
    sg.show("request", true);
  };

  const renderLive = (v) => {
    view = v;
    sg.show("request", false);
    sg.show("live", true);
    sg.text("connected", v.agent.name + " from " + v.agent.org + " is connected.");
    sg.text("granted", (v.scopes || []).map(sg.scopeWords).join("; "));
    const ext = v.extension;
    const wasAsking = !sg.$("extension").hidden;
    sg.show("extension", !!ext);
    if (ext && !wasAsking) sg.$("extension").focus();
    asked = ext ? { by: ext.by, requested_at: ext.requested_at } : null;
    if (ext) {
      sg.text("ext-text", v.agent.name + " asks for " + sg.words(sg.goDuration(ext.by)) +
        " more. If you refuse or do nothing, the session ends at the time shown.");
    }
    const what = { shell: "in a shell", watch: "watching read-only", forward: "using a forwarded port", screen: "watching your screen" };
    const now = (v.connected || []).map((p) => `${p.name} (${p.role}, ${what[p.channel] || p.channel})`);
    sg.text("who-now", now.join("; "));
    sg.show("who-now-line", now.length > 0);
    const device = (v.scopes || []).some((sc) => sc === "shell" || sc.startsWith("tunnel"));
    sg.show("helper", device);
    tick();
    if (!ticker) ticker = setInterval(tick, 1000);
    document.dispatchEvent(new CustomEvent("sg:consent", { detail: v })); // share.js
  };

  const tick = () => {
    if (!view || !view.expires_at) return;
    const left = (Date.parse(view.expires_at) - (Date.now() + offset)) / 1000;
    const el = sg.$("timeleft");
    el.textContent = sg.clock(left);
    el.setAttribute("aria-label", sg.words(left) + " left");
  };

  const renderEnded = (v) => {
    ended = true;
    if (ticker) { clearInterval(ticker); ticker = null; }
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    reconnecting(false);
    sg.show("request", false);
    sg.show("live", false);
    sg.show("ended", true);
    const who = stoppedHere || v.ended_by === "customer" ? "customer" : "the agent or their organisation";
    sg.text("ended-why", sg.endWords(v.end_reason, who, !!v.approved_at));
    document.title = "Session ended";
    document.dispatchEvent(new CustomEvent("sg:consent", { detail: v })); // share.js
    sg.$("ended-h").focus();
  };

  const render = (v) => {
    view = v;
    if (v.csrf_token) csrf = v.csrf_token;
    sg.show("loading", false);
    if (v.state === "requested") { renderRequest(v); watch(); }
    else if (v.state === "active") { renderLive(v); watch(); }
    else renderEnded(v);
  };

  // watch follows the session over the consent websocket until it ends,
  // from the request on: a request the agent withdraws, or a link that
  // expires, while the customer reads it ends the page there and then.
  // A dropped socket is retried until the session ends; its first message
  // after a drop is the fresh view, which clears the notice.
  const watch = () => {
    if (socket || ended) return;
    socket = new WebSocket(sg.wsURL(base + "/watch"));
    socket.onmessage = (ev) => {
      let v;
      try { v = JSON.parse(ev.data); } catch (e) { return; }
      view = v;
      retries = 0;
      reconnecting(false);
      if (v.state === "active") renderLive(v);
      else if (v.state === "ended") renderEnded(v);
    };
    socket.onclose = () => {
      socket = null;
      if (!ended) retry();
    };
  };

  const refresh = async () => {
    const r = await sg.api("GET", base);
    if (r.status === 0 || r.status === 429 || r.status >= 500) { retry(); return; }
    if (r.status !== 200) { reconnecting(false); problem(explain(r.status, r.data)); return; } // link gone, bound elsewhere, expired
    offset = sg.serverOffset(r.date);
    render(r.data);
  };

  const post = async (action, body) => {
    const r = await sg.api("POST", base + "/" + action, body === undefined ? {} : body, csrf);
    if (r.status !== 200) {
      sg.text("form-error", explain(r.status, r.data));
      sg.show("form-error", true);
      return null;
    }
    sg.show("form-error", false);
    return r.data;
  };

  sg.$("consent-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const scopes = [...document.querySelectorAll("#scopes input:checked")].map((b) => b.value);
    if (scopes.length === 0) {
      sg.text("form-error", "You unticked everything. To allow nothing, press Deny.");
      sg.show("form-error", true);
      return;
    }
    sg.$("approve").disabled = true;
    const v = await post("approve", { scopes });
    sg.$("approve").disabled = false;
    if (v) render(v);
  });

  sg.$("deny").addEventListener("click", async () => {
    const v = await post("deny");
    if (v) render(v);
  });

  sg.$("stop").addEventListener("click", async () => {
    stoppedHere = true;
    const v = await post("revoke");
    if (v) renderEnded(v); else stoppedHere = false;
  });

  sg.$("helper-get").addEventListener("click", async () => {
    const v = await post("handoff");
    if (!v || !v.handoff) return;
    sg.$("helper-line").value = v.handoff.command;
    sg.show("helper-cmd", true);
    sg.$("helper-line").select();
  });
  sg.$("helper-copy").addEventListener("click", () => {
    sg.$("helper-line").select();
    if (navigator.clipboard) navigator.clipboard.writeText(sg.$("helper-line").value).catch(() => {});
  });

  const decide = async (approve) => {
    if (!asked) return;
    const v = await post("extension", Object.assign({ approve }, asked));
    if (v && v.state === "active") renderLive(v);
    else if (!v) refresh(); // the request may have changed: show the one pending now
  };
  sg.$("ext-yes").addEventListener("click", () => decide(true));
  sg.$("ext-no").addEventListener("click", () => decide(false));

  refresh();
})();
