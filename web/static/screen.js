// The console's screen viewer: "Watch screen" on an active session with
// the view scope opens a signaling socket, answers the gateway's offer and
// shows the customer's screen, the connection quality (getStats) and the
// chat. The gateway closes everything when the session ends.
"use strict";

const sgScreen = (() => {
  let sock = null;
  let pc = null;
  let current = null; // the session watched
  let ended = false;
  let statsTimer = null;
  let last = null; // previous inbound stats, for rates

  const video = () => sg.$("screen-video");
  const status = (msg) => sg.text("screen-status", msg);

  const attach = () => {
    if (!pc) return;
    const r = pc.getReceivers().find((x) => x.track && x.track.kind === "video");
    if (r) video().srcObject = new MediaStream([r.track]);
  };

  const quality = async () => {
    if (!pc) return;
    const stats = await pc.getStats();
    let inb = null, pair = null;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") inb = s;
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    });
    if (!inb) { sg.text("screen-quality", "no video yet"); return; }
    let kbps = 0;
    if (last) kbps = Math.round(((inb.bytesReceived - last.bytesReceived) * 8) / Math.max(1, inb.timestamp - last.timestamp));
    const lost = inb.packetsLost || 0, got = inb.packetsReceived || 0;
    const lossPct = got + lost > 0 ? (100 * lost) / (got + lost) : 0;
    const rtt = pair && pair.currentRoundTripTime != null ? Math.round(pair.currentRoundTripTime * 1000) : null;
    const fps = inb.framesPerSecond || 0;
    const word = lossPct > 5 || (rtt !== null && rtt > 400) ? "poor" : lossPct > 1 || (rtt !== null && rtt > 150) ? "fair" : "good";
    sg.text("screen-quality", word + " · " + Math.round(fps) + " fps · " + kbps + " kbit/s · loss " +
      lossPct.toFixed(1) + "%" + (rtt !== null ? " · RTT " + rtt + " ms" : "") +
      (inb.frameWidth ? " · " + inb.frameWidth + "×" + inb.frameHeight : ""));
    sg.$("screen").dataset.quality = word;
    last = inb;
  };

  const teardown = () => {
    if (statsTimer) { clearInterval(statsTimer); statsTimer = null; }
    if (pc) { pc.close(); pc = null; }
    video().srcObject = null;
    last = null;
  };

  const connect = () => {
    if (!current || sock || ended) return;
    const id = current.id;
    const me = sg.rtc.socket("/api/v1/sessions/" + encodeURIComponent(id) + "/rtc", {
      hello: (m) => {
        sg.$("screen").dataset.state = m.sharing ? "sharing" : "waiting";
        status(m.sharing ? "The customer is sharing their screen." : "Waiting for the customer to share their screen…");
        sock.ice = m.ice_servers || [];
        // Chat only where the customer granted it (the chat scope).
        sg.show("screen-chat", m.chat === true);
        sg.rtc.chatRoom("screen-chat-log", m.room);
      },
      offer: async (m) => {
        teardown();
        pc = new RTCPeerConnection({ iceServers: (sock && sock.ice) || [] });
        pc.ontrack = () => attach();
        sg.rtc.trickle(pc, (msg) => { if (sock) sock.send(msg); });
        await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
        await pc.setLocalDescription(await pc.createAnswer());
        if (sock) sock.send({ type: "answer", sdp: pc.localDescription.sdp });
        statsTimer = setInterval(quality, 1000);
      },
      sharing: (m) => {
        sg.$("screen").dataset.state = m.sharing ? "sharing" : "stopped";
        if (m.sharing) { status("The customer is sharing their screen."); attach(); }
        else { status("The customer stopped sharing their screen."); video().srcObject = null; }
      },
      chat: (m) => sg.rtc.chatLine("screen-chat-log", m, "viewer"),
      error: (m) => status("The gateway said: " + m.text),
      ended: () => finish(),
    }, (wasEnded) => {
      // A socket closed after the viewer moved on (to another session,
      // which has a socket of its own by then) is no longer sock.
      if (sock !== me) return;
      sock = null;
      if (wasEnded || ended || !current || current.id !== id) return;
      status("Connection to the gateway lost; reconnecting…");
      setTimeout(connect, 1000);
    });
    sock = me;
  };

  const finish = () => {
    ended = true;
    teardown();
    sg.$("screen").dataset.state = "ended";
    status("The session has ended. The screen share is closed.");
    sg.$("screen-chat-text").disabled = true;
    if (sock) { sock.close(); sock = null; }
  };

  const open = (s) => {
    close();
    current = s;
    ended = false;
    sg.text("screen-customer", s.customer);
    sg.$("screen-chat-log").replaceChildren();
    delete sg.$("screen-chat-log").dataset.seq; // another session's numbers
    delete sg.$("screen-chat-log").dataset.room;
    sg.$("screen-chat-text").disabled = false;
    sg.text("screen-quality", "–");
    sg.show("screen", true);
    connect();
    sg.$("screen-h").focus();
  };

  const close = () => {
    current = null;
    teardown();
    if (sock) { sock.close(); sock = null; }
    sg.show("screen", false);
  };

  sg.$("screen-close").addEventListener("click", close);
  sg.rtc.chatForm("screen-chat-form", "screen-chat-text", (m) => { if (sock) sock.send(m); });
  return { open, close };
})();
