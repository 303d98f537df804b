// Package audit owns the gateway's audit log: an append-only sequence of
// events, hash-chained record to record and periodically signed with Ed25519
// checkpoints, persisted through a Store, exportable as JSON lines and
// verifiable from either form.
//
// # Chain
//
// Records are numbered from 1 without gaps. Record 1 has Prev == GenesisHash
// (64 zeros); every later record has Prev equal to the previous record's Hash.
// Hash is the hex SHA-256 of a domain-separation tag, Prev and a canonical
// encoding of Seq and the Event (see Record.ComputeHash): a fixed JSON
// object as encoding/json writes it (written directly, and tested to stay
// byte-for-byte the same), with Detail keys sorted, absent strings as ""
// and times in RFC 3339 with nanoseconds in UTC. Sig is not covered by Hash.
// Because only that canonical form is hashed, a record survives a Store or an
// export/import round trip as long as every field keeps its value; Log
// truncates times to microseconds (UTC) so that they fit a PostgreSQL
// timestamptz exactly.
//
// # Checkpoints
//
// A checkpoint is a record of Type CheckpointType and Actor "system" whose Sig
// is the base64 Ed25519 signature over its OWN hash (prefixed with a
// domain-separation tag, see checkpointMessage). As its hash covers its Prev,
// one signature commits to the whole chain up to and including the checkpoint.
// Log writes one after every CheckpointEvery records, when CheckpointInterval
// has passed since the last one (checked on Append; the owner may also call
// Log.Checkpoint from a ticker), and on Close. A checkpoint is written only
// when there are records it would newly cover.
//
// # What verification detects, honestly
//
// Verify and VerifyJSONL check that seqs run 1, 2, 3... without gaps, that
// every Prev matches the previous Hash, that every Hash recomputes, that every
// checkpoint signature verifies with the given key and that no other record
// carries a signature. Editing, deleting, inserting or reordering records is
// therefore detected, and the TamperError names the first record (or line)
// at which the chain stops verifying; that is the edited record itself for a
// plain edit, but an attacker who re-hashes the chain after an edit is caught
// only at the next checkpoint, which is where the error then points.
//
// Someone with write access to the store but without the signing key can
// still (a) append unsigned records after the last checkpoint and (b) cut
// records off the tail: a truncated log is a valid prefix of the original.
// Report.Unsigned counts the records not covered by a checkpoint so that (a)
// is visible; (b) is invisible to the log alone. Detecting it needs an anchor
// kept elsewhere, such as Log.Head or the last checkpoint shipped to a
// separate log sink, compared with Report.LastSeq and Report.Head.
//
// # Evidence slices
//
// CutSlice cuts the part of the log that concerns one session, ending at a
// signed checkpoint, so that a reviewer can check it offline with
// VerifySlice and the checkpoint key alone; see Slice for what a slice does
// and does not prove.
//
// Events must never carry secrets; Event.Validate rejects detail keys that
// look like they hold one, as a safety net rather than a guarantee.
package audit
