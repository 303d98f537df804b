// Package recorder writes and reads encrypted, tamper-evident session
// recordings.
//
// A recording is one file per session (see FORMAT.md): a signed text header
// carrying an age-wrapped data key, then frames. Data frames hold one record
// (terminal output or input, resize, chat, session event, media sample,
// forwarded-connection metadata, screen keyframe) sealed with
// ChaCha20-Poly1305 under the data key, with the sequence number and the
// previous record's tag in the associated data. Terminal records name
// their channel, so that several terminals of one session are recorded
// apart (format version 3, which the Writer writes; versions 1 and 2,
// still read, have one terminal, channel 0). Every frame carries the hash
// chain over the ciphertext (BLAKE3 from version 2, SHA-256 in version
// 1); checkpoint frames
// signed with the gateway's Ed25519 key pin the chain at least every 10
// seconds and carry the time index of screen keyframes; a signed end frame
// closes the recording.
//
// Writer streams a recording with redaction applied before encryption.
// Verify checks integrity and signatures without the data key. Reader
// decrypts with an age identity, verifying as it reads, and seeks through
// the signed time index. Exporters write asciicast v2, IVF, WebM and JSON
// lines; WebMMuxer muxes VP8 frames for a browser's <video> element.
package recorder
