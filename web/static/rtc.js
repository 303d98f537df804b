// Shared by the customer's share panel (share.js) and the console's screen
// viewer (screen.js): the signaling socket and the chat list. Messages are
// JSON objects with a "type" (see gateway/rtc Message); text is always
// written with textContent.
"use strict";

sg.rtc = {};

// gathered resolves once ICE gathering is complete (or after 3 s), so that
// one message carries every candidate.
sg.rtc.gathered = (pc) => new Promise((resolve) => {
  if (pc.iceGatheringState === "complete") { resolve(); return; }
  const t = setTimeout(resolve, 3000);
  pc.addEventListener("icegatheringstatechange", () => {
    if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
  });
});

// socket opens a signaling websocket to path and calls on[msg.type](msg)
// for each message; onclose(ended) runs when it closes.
sg.rtc.socket = (path, on, onclose) => {
  const ws = new WebSocket(sg.wsURL(path));
  let ended = false;
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (m.type === "ended") ended = true;
    if (on[m.type]) on[m.type](m);
  };
  ws.onclose = () => onclose(ended);
  return {
    send: (m) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m)); },
    close: () => ws.close(),
  };
};

// chatLine appends a chat message to the list with the given id.
sg.rtc.chatLine = (listId, m, me) => {
  const li = document.createElement("li");
  li.className = "chat-msg" + (m.role === me ? " mine" : "");
  const who = document.createElement("span");
  who.className = "chat-from";
  who.textContent = (m.role === "publisher" ? "Customer" : m.from) + ": ";
  const text = document.createElement("span");
  text.className = "chat-text";
  text.textContent = m.text;
  li.append(who, text);
  const list = sg.$(listId);
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
