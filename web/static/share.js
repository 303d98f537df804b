// The customer's screen share panel on the consent page. consent.js
// announces the session with an "sg:consent" event; while the session is
// active with the view scope this panel keeps a signaling socket open,
// offers the screen the customer picks (getDisplayMedia) to the gateway,
// shows that sharing is on, and carries the chat. It reconnects after a
// dropped network and shares the same screen again without a new consent.
"use strict";

(() => {
  const token = location.pathname.split("/")[2] || "";
  const base = "/api/v1/consent/" + encodeURIComponent(token);
  let csrf = "";
  let agent = "the agent";
  let sock = null;
  let ice = [];
  let pc = null;
  let stream = null;
  let ended = false;

  const status = (msg) => sg.text("share-status", msg);

  const indicator = (on) => {
    sg.show("share-indicator", on);
    sg.show("share-start", !on);
    sg.show("share-stop", on);
    document.body.classList.toggle("sharing", on);
  };

  const connect = () => {
    if (sock || ended || !csrf) return;
    sock = sg.rtc.socket(base + "/rtc?csrf=" + encodeURIComponent(csrf), {
      hello: (m) => {
        ice = m.ice_servers || [];
        if (m.chat !== true) sg.show("chat", false);
        sg.rtc.chatRoom("chat-log", m.room);
        sg.$("share-start").disabled = false;
        if (stream) publish(); // reconnected: share the same screen again
      },
      answer: async (m) => {
        if (!pc) return;
        try {
          await pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
        } catch (e) { status("Could not start sharing: " + e.message); }
      },
      chat: (m) => sg.rtc.chatLine("chat-log", m, "publisher"),
      error: (m) => status("The gateway said: " + m.text),
      ended: () => finish("The session has ended. Your screen is no longer shared."),
    }, (wasEnded) => {
      sock = null;
      if (wasEnded || ended) return;
      status("Connection to the gateway lost; reconnecting…");
      setTimeout(connect, 1000);
    });
  };

  // publish offers the current screen track to the gateway.
  const publish = async () => {
    if (pc) pc.close();
    const track = stream.getVideoTracks()[0];
    pc = new RTCPeerConnection({ iceServers: ice });
    const tr = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    if (window.RTCRtpSender && RTCRtpSender.getCapabilities && tr.setCodecPreferences) {
      const codecs = RTCRtpSender.getCapabilities("video").codecs;
      const vp8 = codecs.filter((c) => /vp8/i.test(c.mimeType));
      if (vp8.length) tr.setCodecPreferences(vp8.concat(codecs.filter((c) => !/vp8/i.test(c.mimeType))));
    }
    pc.onconnectionstatechange = () => {
      if (!pc) return;
      if (pc.connectionState === "connected") status("");
      if (pc.connectionState === "failed") status("The video connection failed; retrying…");
    };
    sg.rtc.trickle(pc, (m) => { if (sock) sock.send(m); });
    await pc.setLocalDescription(await pc.createOffer());
    if (sock) sock.send({ type: "offer", sdp: pc.localDescription.sdp });
  };

  const start = async () => {
    status("");
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    } catch (e) {
      status("Screen sharing did not start (" + (e.name || "cancelled") + "). Press Share your screen to try again.");
      return;
    }
    stream.getVideoTracks()[0].addEventListener("ended", () => stopSharing());
    indicator(true);
    await publish();
  };

  const stopSharing = () => {
    if (sock) sock.send({ type: "stop" });
    if (pc) { pc.close(); pc = null; }
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
    indicator(false);
    status("You stopped sharing. The agent no longer sees your screen.");
  };

  const finish = (msg) => {
    ended = true;
    if (pc) { pc.close(); pc = null; }
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
    indicator(false);
    sg.$("share-start").disabled = true;
    sg.$("chat-text").disabled = true;
    status(msg);
    if (sock) { sock.close(); sock = null; }
  };

  document.addEventListener("sg:consent", (ev) => {
    const v = ev.detail;
    if (v.csrf_token) csrf = v.csrf_token;
    if (v.agent && v.agent.name) agent = v.agent.name;
    sg.text("share-agent", agent);
    if (v.state === "ended") {
      if (!ended) finish("The session has ended. Your screen is no longer shared.");
      return;
    }
    const scopes = v.scopes || [];
    if (v.state !== "active" || !scopes.includes("view")) return;
    sg.show("share", true);
    sg.show("chat", scopes.includes("chat")); // chat only if granted; the gateway enforces it
    connect();
  });

  sg.$("share-start").addEventListener("click", start);
  sg.$("share-stop").addEventListener("click", stopSharing);
  sg.$("share-end").addEventListener("click", () => sg.$("stop").click());
  sg.rtc.chatForm("chat-form", "chat-text", (m) => { if (sock) sock.send(m); });
})();
