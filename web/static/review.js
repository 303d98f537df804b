// The compliance review player. Everything comes from the local review
// server's JSON API and is written with textContent, never as HTML.
"use strict";

const rv = {
  items: [],          // the list from api/recordings, relative to the page under its secret prefix
  sort: { key: "start", dir: -1 },
  term: null,         // the one xterm.js Terminal, reused for every recording
  cur: null,          // the open recording: see openRecording
};

// Exposed for the browser tests and the benchmark.
window.sgReview = rv;

const WINDOW_MS = 30000;   // terminal time fetched per request
const AHEAD_MS = 10000;    // fetch more when fewer ms than this are queued
const TICK_MS = 50;

const fmtClock = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
};

const statusText = (v) => {
  switch (v.status) {
    case "verified": return "verified";
    case "cut_short": return "cut short";
    case "tampered": return `tampered at record ${v.tampered_at}`;
    case "missing": return "missing";
    case "unreadable": return "unreadable";
    default: return "verifying…";
  }
};

const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};

const showError = (msg) => {
  sg.text("error", msg || "");
  sg.show("error", !!msg);
};

// b64 decodes the base64 that Go's encoding/json writes for []byte.
const b64 = (s) => {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
};

// ---- the list -------------------------------------------------------------

rv.loadList = async () => {
  const { status, data } = await sg.api("GET", "api/recordings");
  if (status !== 200) {
    showError(data.error || "cannot list recordings");
    return;
  }
  showError("");
  sg.text("source", data.source || "");
  sg.$("truncated").hidden = !data.truncated;
  rv.items = data.recordings || [];
  rv.renderList();
  if (rv.items.some((v) => v.status === "verifying")) setTimeout(rv.loadList, 1000);
  if (rv.cur && rv.cur.waiting) rv.refreshOpen();
};

rv.filtered = () => {
  const agent = sg.$("f-agent").value.trim().toLowerCase();
  const customer = sg.$("f-customer").value.trim().toLowerCase();
  const from = sg.$("f-from").value, to = sg.$("f-to").value;
  const st = sg.$("f-status").value;
  const out = rv.items.filter((v) => {
    if (agent && !(v.agent || "").toLowerCase().includes(agent)) return false;
    if (customer && !(v.customer || "").toLowerCase().includes(customer)) return false;
    if (st && v.status !== st) return false;
    const day = utcText(v.start).slice(0, 10);
    if (from && day < from) return false;
    if (to && day > to) return false;
    return true;
  });
  const { key, dir } = rv.sort;
  out.sort((a, b) => {
    const x = a[key] ?? "", y = b[key] ?? "";
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
  return out;
};

// utcText shows a time as "2026-03-01 09:00 UTC": in UTC, as verify and
// the audit log do, and on the day the date filter compares.
const utcText = (t) => {
  const d = new Date(t || "");
  return isNaN(d) ? "" : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
};

rv.renderList = () => {
  const body = sg.$("rows");
  body.replaceChildren();
  const rows = rv.filtered();
  for (const v of rows) {
    const tr = el("tr");
    tr.dataset.id = v.id;
    const open = el("button", v.agent || "(unknown agent)", "linklike");
    open.type = "button";
    open.addEventListener("click", () => rv.openRecording(v.id));
    const td0 = el("td");
    td0.append(open);
    tr.append(td0, el("td", v.customer || ""),
      el("td", utcText(v.start)),
      el("td", v.duration_ms ? fmtClock(v.duration_ms) : ""),
      el("td", (v.scopes || []).join(", ")),
      el("td", v.end_reason || v.state || ""),
      el("td", statusText(v), "integrity st-" + v.status));
    body.append(tr);
  }
  sg.show("empty", rows.length === 0);
};

// ---- search ---------------------------------------------------------------

rv.search = async (q) => {
  const { status, data } = await sg.api("GET", "api/search?q=" + encodeURIComponent(q));
  const list = sg.$("hits");
  list.replaceChildren();
  if (status !== 200) {
    showError(data.error || "search failed");
    return;
  }
  if (data.incomplete) list.append(el("li", data.incomplete, "problem"));
  if (!data.hits.length) list.append(el("li", "No matches (recordings still being verified are not searched yet).", "help"));
  for (const h of data.hits) {
    const v = rv.items.find((x) => x.id === h.id) || {};
    const li = el("li");
    const a = el("button", `${v.agent || h.id} · ${v.customer || ""} · ${fmtClock(h.t)}`, "linklike hit");
    a.type = "button";
    a.addEventListener("click", () => rv.openRecording(h.id, h.t, h.channel));
    li.append(a, el("code", h.text, "hit-text"));
    list.append(li);
  }
};

// ---- the player -----------------------------------------------------------

rv.ensureTerminal = () => {
  if (rv.term) return rv.term;
  rv.term = new Terminal({
    cols: 80, rows: 24, convertEol: false, disableStdin: true, cursorBlink: false,
    scrollback: 1000, fontSize: 14, allowProposedApi: true, // for term.unicode
  });
  // Wide characters take two columns, as in the recorded terminal and in
  // the recorder's keyframes.
  rv.term.loadAddon(new Unicode11Addon.Unicode11Addon());
  rv.term.unicode.activeVersion = "11";
  rv.term.open(sg.$("terminal"));
  return rv.term;
};

// screenText returns the terminal's visible lines, for tests.
rv.screenText = () => {
  if (!rv.term) return "";
  const b = rv.term.buffer.active, lines = [];
  for (let i = 0; i < rv.term.rows; i++) {
    const l = b.getLine(b.viewportY + i);
    lines.push(l ? l.translateToString(true) : "");
  }
  return lines.join("\n");
};

// openRecording opens recording id at time at (ms), showing terminal
// channel ch (default: the one the server names, the first terminal).
rv.openRecording = async (id, at, ch) => {
  rv.pause();
  const { status, data } = await sg.api("GET", "api/recordings/" + encodeURIComponent(id));
  if (status !== 200) {
    showError(data.error || "cannot open the recording");
    return;
  }
  showError("");
  const c = rv.cur = {
    id, meta: data, pos: 0, queue: [], lastSeq: 0, lastMs: 0, end: false, loading: null,
    channel: ch === undefined || ch === null ? (data.channel || 0) : ch,
    playing: false, speed: Number(sg.$("speed").value) || 1, waiting: !data.summary, gen: (rv.cur ? rv.cur.gen + 1 : 1),
  };
  sg.show("player", true);
  sg.text("p-title", `${data.agent || ""} → ${data.customer || ""} (${data.session_id || id})`);
  rv.renderMeta();
  const base = "api/recordings/" + encodeURIComponent(id);
  rv.channelLinks(c);
  sg.$("x-jsonl").href = base + "/export?format=jsonl";
  sg.$("x-webm").href = base + "/export?format=webm";
  sg.$("x-ivf").href = base + "/export?format=ivf";
  sg.$("x-evidence").href = base + "/evidence.zip";
  sg.$("seek").max = String(data.duration_ms || 0);

  const video = sg.$("video");
  // WebM, which the player plays, has no H.264 (a browser without VP8).
  const h264 = !!(data.summary && data.summary.video && data.summary.video.codec === "h264");
  sg.$("video-h264-ivf").href = base + "/export?format=ivf";
  sg.show("video-h264", !!data.video && h264);
  if (data.video && !h264) {
    video.src = base + "/video.webm";
    sg.show("video", true);
  } else {
    video.removeAttribute("src");
    video.load();
    sg.show("video", false);
  }
  sg.show("terminal", data.terminal || !data.summary);
  if (data.missing) {
    sg.show("terminal", false);
    return;
  }
  // The screen is requested first, so the server reads it while the
  // browser builds the terminal.
  const seeking = rv.seek(at || 0);
  rv.ensureTerminal();
  await seeking;
  sg.$("player").scrollIntoView({ block: "start" });
};

// refreshOpen reloads the open recording's findings once the verifying
// pass has finished: status banner, markers, chat, timeline.
rv.refreshOpen = async () => {
  const c = rv.cur;
  const v = rv.items.find((x) => x.id === c.id);
  if (!v || v.status === "verifying") return;
  const { status, data } = await sg.api("GET", "api/recordings/" + encodeURIComponent(c.id) + "?refresh=1");
  if (status !== 200 || rv.cur !== c) return;
  c.meta = data;
  c.waiting = !data.summary;
  sg.$("seek").max = String(data.duration_ms || 0);
  sg.show("terminal", data.terminal);
  rv.renderMeta();
};

// channelLinks points the asciicast export at the channel shown.
rv.channelLinks = (c) => {
  sg.$("x-asciicast").href = "api/recordings/" + encodeURIComponent(c.id) + "/export?format=asciicast&channel=" + c.channel;
};

// renderChannels offers the recording's terminal channels when it has
// more than one: the player shows one at a time.
rv.renderChannels = () => {
  const c = rv.cur, s = c.meta.summary;
  const chans = (s && s.channels) || [];
  const sel = sg.$("channel");
  sel.replaceChildren();
  for (const tc of chans) {
    const o = el("option", `channel ${tc.n}` + (tc.terminal ? "" : " (no terminal)"));
    o.value = String(tc.n);
    o.selected = tc.n === c.channel;
    sel.append(o);
  }
  sg.show("channel", chans.length > 1);
  sg.show("channel-label", chans.length > 1);
};

rv.setChannel = (n) => {
  const c = rv.cur;
  if (!c || c.channel === n) return;
  c.channel = n;
  rv.channelLinks(c);
  rv.seek(c.pos);
};

rv.renderMeta = () => {
  const c = rv.cur, m = c.meta, s = m.summary;
  rv.renderChannels();
  const bad = m.status === "tampered" || m.status === "cut_short" || m.status === "unreadable" || m.status === "missing";
  if (bad) {
    let msg = `${statusText(m)}: ${m.problem || ""}`;
    if (m.status === "tampered" || m.status === "cut_short") msg += " — playing the intact part only.";
    sg.text("p-banner", msg);
  }
  sg.show("p-banner", bad);
  const info = [`integrity: ${statusText(m)}`, `length ${fmtClock(m.duration_ms || 0)}`];
  if (m.scopes && m.scopes.length) info.push("scopes " + m.scopes.join(", "));
  if (m.end_reason) info.push("ended: " + m.end_reason);
  if (m.signer) info.push("signed by key " + m.signer);
  if (s) info.push(`${s.redactions} redaction(s)`);
  sg.text("p-meta", info.join(" · "));

  const chat = sg.$("chat");
  chat.replaceChildren();
  const tl = sg.$("timeline");
  tl.replaceChildren();
  const marks = sg.$("markers");
  marks.replaceChildren();
  if (!s) {
    tl.append(el("li", "Verifying the whole recording…", "help"));
    return;
  }
  for (const msg of s.chat) {
    const li = el("li", null, "chat-msg");
    li.append(el("span", fmtClock(msg.t) + " ", "chat-time"), el("span", msg.from + ": ", "chat-from"), el("span", msg.text));
    chat.append(li);
  }
  if (!s.chat.length) chat.append(el("li", "No chat.", "help"));
  const dur = Math.max(1, m.duration_ms || 1);
  for (const mk of s.markers) {
    const li = el("li", null, "tl-" + mk.kind);
    const b = el("button", fmtClock(mk.t), "linklike");
    b.type = "button";
    b.addEventListener("click", () => rv.seek(mk.t));
    li.append(b, el("span", " " + mk.kind + ": ", "tl-kind"), el("span", mk.label));
    tl.append(li);
    const dot = el("span", null, "marker mk-" + mk.kind);
    dot.title = `${fmtClock(mk.t)} ${mk.kind}: ${mk.label}`;
    dot.style.left = (100 * Math.min(mk.t, dur) / dur) + "%";
    marks.append(dot);
  }
};

// fetchWindow asks for terminal records. With fresh set it asks only for
// the screen at c.pos, as a keyframe the server renders from the last
// recorded keyframe before it: a seek waits for one screenful, and
// playing fetches the records after it.
rv.fetchWindow = async (c, fresh) => {
  const base = "api/recordings/" + encodeURIComponent(c.id) + "/term";
  const q = (fresh ? `?from=${c.pos}&to=${c.pos}&screen=1`
    : `?from=${c.lastMs}&after=${c.lastSeq}&to=${Math.max(c.lastMs, c.pos) + WINDOW_MS}`) + `&channel=${c.channel}`;
  const { status, data } = await sg.api("GET", base + q);
  if (status !== 200) throw new Error(data.error || "cannot read the recording");
  return data;
};

rv.take = (c, w) => {
  for (const r of w.records) c.queue.push(r);
  if (w.records.length) {
    const last = w.records[w.records.length - 1];
    c.lastSeq = last.s;
    c.lastMs = last.t;
  }
  if (w.end) c.end = true;
  if (w.stop) c.stop = w.stop;
};

rv.seek = async (ms) => {
  const c = rv.cur;
  if (!c) return;
  const gen = ++c.gen;
  ms = Math.max(0, Math.min(Math.round(ms), c.meta.duration_ms || 0));
  c.pos = ms;
  c.busy = true;
  c.queue = []; c.end = false; c.stop = null; c.lastSeq = 0; c.lastMs = ms;
  let w;
  try {
    c.loading = rv.fetchWindow(c, true);
    w = await c.loading;
  } catch (e) {
    showError(e.message);
    return;
  } finally {
    c.loading = null;
  }
  if (c.gen !== gen || rv.cur !== c) return;
  const t = rv.ensureTerminal();
  t.reset();
  if (w.keyframe) {
    t.resize(w.keyframe.c || 80, w.keyframe.r || 24);
    t.write(b64(w.keyframe.d));
    c.lastSeq = w.keyframe.s;
  }
  if (!w.records.length && w.keyframe) c.lastMs = w.keyframe.t;
  rv.take(c, w);
  rv.apply(c, ms);
  rv.syncVideo(c);
  rv.showPos();
  // xterm.js parses writes asynchronously: the seek is done when the
  // screen shows the new position.
  await new Promise((resolve) => t.write("", resolve));
  if (c.gen !== gen) return;
  c.busy = false;
  c.seeked = performance.now();
};

// idle reports whether no seek is in progress, for tests.
rv.idle = () => !!rv.cur && !rv.cur.busy;

// apply writes every queued record at or before ms, in one write.
rv.apply = (c, ms) => {
  const parts = [];
  let n = 0;
  while (c.queue.length && c.queue[0].t <= ms) {
    const r = c.queue.shift();
    if (r.k === "r") {
      if (parts.length) { rv.term.write(rv.concat(parts, n)); parts.length = 0; n = 0; }
      rv.term.resize(r.c, r.r);
    } else if (r.k === "o") {
      const d = b64(r.d);
      parts.push(d);
      n += d.length;
    }
  }
  if (parts.length) rv.term.write(rv.concat(parts, n));
};

rv.concat = (parts, n) => {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};

rv.showPos = () => {
  const c = rv.cur;
  sg.$("seek").value = String(c.pos);
  sg.text("clock", `${fmtClock(c.pos)} / ${fmtClock(c.meta.duration_ms || 0)}`);
};

rv.syncVideo = (c) => {
  const v = sg.$("video");
  if (v.hidden || !c.meta.summary || !c.meta.summary.video) return;
  const first = c.meta.summary.video.first_ms || 0;
  const at = Math.max(0, (c.pos - first) / 1000);
  if (Math.abs(v.currentTime - at) > 0.3) v.currentTime = at;
  v.playbackRate = c.speed;
};

rv.play = () => {
  const c = rv.cur;
  if (!c || c.playing) return;
  if (c.pos >= (c.meta.duration_ms || 0)) rv.seek(0);
  c.playing = true;
  sg.text("play", "Pause");
  const v = sg.$("video");
  if (!v.hidden) { rv.syncVideo(c); v.play().catch(() => {}); }
  let last = performance.now();
  const tick = async () => {
    if (!c.playing || rv.cur !== c) return;
    const now = performance.now();
    if (!c.loading) {
      c.pos = Math.min(c.pos + (now - last) * c.speed, c.meta.duration_ms || 0);
      rv.apply(c, c.pos);
      rv.showPos();
    }
    last = now;
    if (c.pos >= (c.meta.duration_ms || 0) && (c.end || !c.queue.length)) {
      rv.pause();
      return;
    }
    if (!c.end && !c.loading && (c.queue.length === 0 || c.queue[c.queue.length - 1].t < c.pos + AHEAD_MS)) {
      const gen = c.gen;
      c.loading = rv.fetchWindow(c, false);
      try {
        const w = await c.loading;
        if (c.gen === gen) rv.take(c, w);
      } catch (e) {
        showError(e.message);
        c.end = true;
      } finally {
        c.loading = null;
      }
    }
    c.timer = setTimeout(tick, TICK_MS);
  };
  c.timer = setTimeout(tick, TICK_MS);
};

rv.pause = () => {
  const c = rv.cur;
  if (!c) return;
  c.playing = false;
  clearTimeout(c.timer);
  sg.text("play", "Play");
  const v = sg.$("video");
  if (!v.hidden) v.pause();
};

// ---- wiring ---------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["f-agent", "f-customer", "f-from", "f-to", "f-status"]) {
    sg.$(id).addEventListener("input", rv.renderList);
  }
  sg.$("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const b of document.querySelectorAll("button.sort")) {
    b.addEventListener("click", () => {
      const key = b.dataset.key;
      rv.sort = { key, dir: rv.sort.key === key ? -rv.sort.dir : 1 };
      rv.renderList();
    });
  }
  sg.$("search").addEventListener("submit", (e) => {
    e.preventDefault();
    rv.search(sg.$("q").value);
  });
  sg.$("play").addEventListener("click", () => (rv.cur && rv.cur.playing ? rv.pause() : rv.play()));
  sg.$("speed").addEventListener("change", () => {
    if (!rv.cur) return;
    rv.cur.speed = Number(sg.$("speed").value) || 1;
    sg.$("video").playbackRate = rv.cur.speed;
  });
  sg.$("seek").addEventListener("change", () => rv.seek(Number(sg.$("seek").value)));
  sg.$("channel").addEventListener("change", () => rv.setChannel(Number(sg.$("channel").value)));
  rv.loadList();
});
