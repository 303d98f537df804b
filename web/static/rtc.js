// Shared by the customer's share panel (share.js) and the console's screen
// viewer (screen.js): the signaling socket and the chat list. Messages are
// JSON objects with a "type" (see gateway/rtc Message); text is always
// written with textContent.
"use strict";

sg.rtc = {};

// trickle sends the ICE candidates pc gathers to the gateway as they come,
// in "candidate" messages after the offer or answer, so that the offer or
// answer need not wait for gathering to end (a TURN server that does not
// answer holds it for seconds). Set it before setLocalDescription: the
// offer or answer is sent as soon as that resolves, before any candidate.
sg.rtc.trickle = (pc, send) => {
  pc.onicecandidate = (ev) => {
    if (ev.candidate && ev.candidate.candidate) send({ type: "candidate", candidate: ev.candidate.toJSON() });
  };
};

// socket opens a signaling websocket to path and calls on[msg.type](msg)
// for each message; onclose(ended) runs when it closes.
sg.rtc.socket = (path, on, onclose) => {
  const ws = new WebSocket(sg.wsURL(path));
  let ended = false;
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (m.type === "ended") ended = true;
    // The room's recent chat, after hello: what was said while this page
    // was away or before it came.
    if (m.type === "history" && on.chat) (m.history || []).forEach((c) => on.chat(c));
    if (on[m.type]) on[m.type](m);
  };
  ws.onclose = () => onclose(ended);
  return {
    send: (m) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m)); },
    close: () => ws.close(),
  };
};

// chatRoom tells the list with the given id which room its chat comes
// from, from the hello's room: a room new to it (the gateway restarted
// after a crash) numbers its messages from 1 again, so the list forgets
// the last number it showed, keeping the lines.
sg.rtc.chatRoom = (listId, room) => {
  const list = sg.$(listId);
  if (list.dataset.room === (room || "")) return;
  list.dataset.room = room || "";
  delete list.dataset.seq;
};

// chatLine appends a chat message to the list with the given id, once:
// after a reconnect the room sends its history again, and the list
// remembers the last message number it shows.
sg.rtc.chatLine = (listId, m, me) => {
  const list = sg.$(listId);
  if (m.seq) {
    if (m.seq <= Number(list.dataset.seq || 0)) return;
    list.dataset.seq = String(m.seq);
  }
  const li = document.createElement("li");
  li.className = "chat-msg" + (m.role === me ? " mine" : "");
  const who = document.createElement("span");
  who.className = "chat-from";
  who.textContent = (m.role === "publisher" ? "Customer" : m.from) + ": ";
  const text = document.createElement("span");
  text.className = "chat-text";
  text.textContent = m.text;
  li.append(who, text);
  list.append(li);
  list.scrollTop = list.scrollHeight;
};

// chatForm wires a form with a text input to send chat messages.
sg.rtc.chatForm = (formId, inputId, send) => {
  sg.$(formId).addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = sg.$(inputId);
    const text = input.value.trim();
    if (!text) return;
    send({ type: "chat", text });
    input.value = "";
  });
};
