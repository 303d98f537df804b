// Shared helpers of the supportgate pages. Everything the API returns is
// written with textContent, never as HTML.
"use strict";

const sg = {};

sg.$ = (id) => document.getElementById(id);

sg.text = (id, value) => { sg.$(id).textContent = value == null ? "" : String(value); };

sg.show = (id, on) => { sg.$(id).hidden = !on; };

// api sends a JSON request and resolves to {status, data}; data is the
// parsed JSON answer ({error} on failure) or {} when there is none.
sg.api = async (method, path, body, csrf) => {
  const opts = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (csrf) opts.headers["X-CSRF-Token"] = csrf;
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    return { status: 0, data: { error: "cannot reach the gateway; check your connection" }, date: null };
  }
  let data = {};
  try { data = await resp.json(); } catch (e) { data = {}; }
  return { status: resp.status, data, date: resp.headers.get("Date") };
};

// wsURL turns a path into a websocket URL on this origin.
sg.wsURL = (path) => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;

// goDuration parses Go's time.Duration text ("1h30m0s") into seconds.
sg.goDuration = (s) => {
  if (!s) return 0;
  let secs = 0;
  const re = /([0-9.]+)(h|ms|m|s|µs|us|ns)/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    const n = parseFloat(m[1]);
    secs += { h: 3600, m: 60, s: 1, ms: 0.001 }[m[2]] * n || 0;
  }
  return secs;
};

// words says a number of seconds in plain words: "1 hour 30 minutes".
sg.words = (secs) => {
  secs = Math.max(0, Math.round(secs));
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  const part = (n, one) => n + " " + one + (n === 1 ? "" : "s");
  const out = [];
  if (h) out.push(part(h, "hour"));
  if (m) out.push(part(m, "minute"));
  if (s && !h) out.push(part(s, "second"));
  return out.length ? out.join(" ") : "0 seconds";
};

// clock shows seconds as H:MM:SS or M:SS.
sg.clock = (secs) => {
  secs = Math.max(0, Math.floor(secs));
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
};

// scopeWords explains a scope ("view", "tunnel:80,443") in plain words.
sg.scopeWords = (scope) => {
  const [kind, ports] = String(scope).split(":");
  switch (kind) {
    case "view": return "See your screen (you choose what to share)";
    case "chat": return "Chat with you in text";
    case "shell": return "Type commands on your computer, as you, in a terminal (this also lets them read, change and copy your files)";
    case "tunnel": return "Connect to network services on your computer only, on port" +
      (ports && ports.includes(",") ? "s " : " ") + (ports || "");
    case "files": return "Send and receive files";
  }
  return "Unknown permission: " + scope;
};

// endWords explains why a session ended; approved tells a session that
// ran from a request withdrawn before anyone approved it.
sg.endWords = (reason, who, approved) => {
  switch (reason) {
    case "denied": return "You denied the request. Nobody was given access.";
    case "link_expired": return "The link expired before anyone approved it. Nobody was given access.";
    case "expired": return "The time you allowed ran out.";
    case "revoked":
      if (who === "customer") return "You stopped the session.";
      if (approved === false) return "The request was withdrawn" + (who ? " by " + who : "") + ". Nobody was given access.";
      return "The session was stopped" + (who ? " by " + who : "") + ".";
    case "idle": return "The session ended because nothing happened for a while.";
    case "locked": return "The agent's account was locked by an administrator, which ended the session.";
    case "completed": return "The agent finished the session.";
  }
  return "The session ended" + (reason ? " (" + reason + ")" : "") + ".";
};

// serverOffset estimates server time minus local time from a Date header.
sg.serverOffset = (date) => {
  const t = Date.parse(date || "");
  return isNaN(t) ? 0 : t - Date.now();
};
