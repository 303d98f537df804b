// Package review is the compliance reviewer's player: a web server bound to
// loopback that lists recordings from a folder or a gateway, decrypts them
// in this process with the reviewer's own age identity, and serves the
// review page of package web (terminal, video, chat, timeline, search) and
// evidence bundles.
//
// Nothing decrypted is written to disk: recordings are read through the
// verifying recorder.Reader on each request, and a reviewer's export is
// streamed to their browser. When the source is a gateway every recording
// opened or exported is reported to it, so it lands in the gateway's
// audit log.
package review
