// The enrollment page: shows the TOTP secret as a QR code (rendered by the
// gateway), then sets the password once a code proves the app has it.
"use strict";

(() => {
  const token = location.pathname.split("/")[2] || "";
  const base = "/api/v1/enroll/" + encodeURIComponent(token);

  const problem = (msg) => {
    sg.text("problem", msg);
    sg.show("problem", !!msg);
  };

  const load = async () => {
    const r = await sg.api("GET", base);
    sg.show("loading", false);
    if (r.status !== 200) {
      problem(r.status === 404 ? "This enrollment link is unknown, used or expired. Ask an administrator for a new one."
        : r.data.error || "Cannot load the enrollment (" + r.status + ").");
      return;
    }
    const v = r.data;
    sg.text("user", v.user);
    sg.text("role", v.role);
    sg.text("org", v.org);
    sg.text("otpauth", v.otpauth_uri);
    try { sg.text("secret", new URL(v.otpauth_uri).searchParams.get("secret")); } catch (e) { /* shown in the URI */ }
    sg.$("qr").src = base + "/qr.png";
    sg.show("setup", true);
  };

  sg.$("enroll-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const pw = sg.$("password").value;
    if (pw !== sg.$("password2").value) { problem("The two passwords differ."); return; }
    const r = await sg.api("POST", base, { password: pw, totp: sg.$("totp").value.trim() });
    if (r.status !== 200) { problem(r.data.error || "Setup failed (" + r.status + ")."); return; }
    problem("");
    sg.show("setup", false);
    sg.show("done", true);
    sg.$("to-console").focus();
  });

  load();
})();
