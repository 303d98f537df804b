package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Evidence slices.
//
// A Slice is the part of the log that concerns one session, cut so that a
// reviewer can check it without the rest: the contiguous run of records
// from the session's first record up to and including the first signed
// checkpoint after its last one, each record exactly as stored, with the
// checkpoint key and the list of the records that carry the session.
// Because every Hash covers the Prev before it and the closing checkpoint's
// signature covers its own Hash, that one signature vouches for every
// record of the slice: editing, dropping, inserting or reordering any of
// them breaks the chain before the checkpoint or the checkpoint itself.
//
// What a slice cannot show: records before its first one (it starts at the
// first record that carries the session, which VerifySlice checks, but it
// cannot prove no earlier record did), and records of the session after
// its closing checkpoint (for a session that has ended, there are none but
// the reviews of it). The full log (Export, Verify) answers both.

// SliceFormat names the version of the Slice encoding.
const SliceFormat = "supportgate-audit-slice-v1"

// Limits on a Slice, enforced by CutSlice and VerifySlice.
const (
	MaxSliceRecords = 100_000  // records in one slice, the closing checkpoint included
	MaxSliceBytes   = 64 << 20 // its JSON encoding
)

// Errors of CutSlice and VerifySlice, matched with errors.Is.
var (
	// ErrSliceUnsigned: no signed checkpoint follows the session's last
	// record yet. Writing one (Log.Checkpoint) and cutting again helps.
	ErrSliceUnsigned = errors.New("audit: no signed checkpoint covers the slice yet")
	// ErrSliceTooLarge: the slice would pass MaxSliceRecords or
	// MaxSliceBytes; use the full log instead.
	ErrSliceTooLarge = errors.New("audit: slice is too large")
	// ErrMalformedSlice: the bytes given to VerifySlice are not a slice.
	ErrMalformedSlice = errors.New("audit: malformed slice")
	// ErrSliceKey: the slice names a checkpoint key other than the one
	// it is verified with.
	ErrSliceKey = errors.New("audit: slice names another checkpoint key")
)

// Slice is the JSON form of an evidence slice.
type Slice struct {
	Format  string `json:"format"`  // SliceFormat
	Session string `json:"session"` // the session id
	// KeyID and PublicKey (base64 standard encoding) name the key that
	// signed the checkpoints. They are informative only: a reviewer checks
	// the slice with a key they already trust, such as the one that signed
	// the session's recording.
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	// SessionRecords are the Seqs of the records in Records whose Session
	// is this session, in order.
	SessionRecords []uint64 `json:"session_records"`
	// Records are the records, contiguous, ending with a signed checkpoint.
	Records []Record `json:"records"`
}

// CutSlice reads from s the slice of session: the records from first up to
// and including the first signed checkpoint at or after last. first and
// last are the Seqs of the session's first and last records, which the
// caller finds (a store can index records by session; s alone cannot). If
// no signed checkpoint follows last yet, CutSlice returns an error wrapping
// ErrSliceUnsigned; past MaxSliceRecords or MaxSliceBytes, one wrapping
// ErrSliceTooLarge. pub is the checkpoint key, recorded in the slice.
func CutSlice(ctx context.Context, s Store, session string, first, last uint64, pub ed25519.PublicKey) (*Slice, error) {
	if session == "" {
		return nil, errors.New("audit: cut slice: session is empty")
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit: cut slice: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if first == 0 || last < first {
		return nil, fmt.Errorf("audit: cut slice of session %s: records %d to %d are not a range", session, first, last)
	}
	if last-first >= MaxSliceRecords {
		return nil, fmt.Errorf("audit: cut slice of session %s: records %d to %d: %w (at most %d records)",
			session, first, last, ErrSliceTooLarge, MaxSliceRecords)
	}
	sl := &Slice{
		Format: SliceFormat, Session: session, KeyID: KeyID(pub),
		PublicKey: base64.StdEncoding.EncodeToString(pub), SessionRecords: []uint64{},
	}
	size := 1024 // the envelope, generously
	errDone := errors.New("done")
	err := s.ScanAudit(ctx, first, func(r Record) error {
		if len(sl.Records) == 0 && r.Seq != first {
			return fmt.Errorf("audit: cut slice of session %s: record %d is missing from the store", session, first)
		}
		if len(sl.Records) >= MaxSliceRecords {
			return fmt.Errorf("audit: cut slice of session %s from record %d: %w (at most %d records)",
				session, first, ErrSliceTooLarge, MaxSliceRecords)
		}
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("audit: cut slice: record %d: %w", r.Seq, err)
		}
		if size += len(b) + 22; size > MaxSliceBytes { // the record, its comma and its entry in SessionRecords
			return fmt.Errorf("audit: cut slice of session %s from record %d: %w (at most %d bytes)",
				session, first, ErrSliceTooLarge, MaxSliceBytes)
		}
		sl.Records = append(sl.Records, r)
		if r.Session == session {
			sl.SessionRecords = append(sl.SessionRecords, r.Seq)
		}
		if r.Seq >= last && r.Type == CheckpointType && r.Sig != "" {
			return errDone
		}
		return nil
	})
	switch {
	case errors.Is(err, errDone):
		return sl, nil
	case err != nil:
		return nil, err
	case len(sl.Records) == 0:
		return nil, fmt.Errorf("audit: cut slice of session %s: record %d is missing from the store", session, first)
	}
	return nil, fmt.Errorf("audit: cut slice of session %s: records %d to %d: %w", session, first, last, ErrSliceUnsigned)
}

// SliceReport summarises a slice that verified.
type SliceReport struct {
	Session        string
	First          uint64 // Seq of the first record
	Last           uint64 // Seq of the closing checkpoint
	Records        int    // records, checkpoints included
	Checkpoints    int    // checkpoints, each with a valid signature
	SessionRecords int    // records of the session
	FirstType      string // Type of the first record; the gateway starts at "session.created"
	KeyID          string // of the key the checkpoints verified with
}

// VerifySlice checks an evidence slice, as JSON, which it treats as
// untrusted, against the checkpoint key pub: the records must run on
// without gaps, each Prev matching the Hash before it and each Hash
// recomputing, every checkpoint's signature must verify with pub and the
// last record must be such a checkpoint; the first record must be the
// session's, and session_records must name exactly the records that carry
// the session. A slice that fails yields a *TamperError naming the first
// bad record by Seq; bytes that are not a slice, an error wrapping
// ErrMalformedSlice; a slice naming a key other than pub, one wrapping
// ErrSliceKey.
func VerifySlice(data []byte, pub ed25519.PublicKey) (SliceReport, error) {
	if len(pub) != ed25519.PublicKeySize {
		return SliceReport{}, fmt.Errorf("audit: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	sl, err := ParseSlice(data)
	if err != nil {
		return SliceReport{}, err
	}
	if sl.PublicKey != "" {
		named, err := base64.StdEncoding.DecodeString(sl.PublicKey)
		if err != nil || !bytes.Equal(named, pub) {
			return SliceReport{}, fmt.Errorf("%w: it names key %s, verifying with %s",
				ErrSliceKey, truncateField(sl.KeyID), KeyID(pub))
		}
	}
	recs := sl.Records
	v := &verifier{pub: pub, start: recs[0].Seq - 1, prev: recs[0].Prev}
	if recs[0].Seq == 1 {
		v.prev = GenesisHash
	}
	rep := SliceReport{Session: sl.Session, First: recs[0].Seq, FirstType: recs[0].Type, KeyID: KeyID(pub)}
	named := sl.SessionRecords
	for i, r := range recs {
		if reason := v.check(r); reason != "" {
			return rep, &TamperError{Seq: v.next(), Reason: reason}
		}
		mine := r.Session == sl.Session
		switch {
		case i == 0 && !mine:
			return rep, &TamperError{Seq: r.Seq, Reason: "the slice does not start at a record of the session"}
		case mine && (len(named) == 0 || named[0] != r.Seq):
			return rep, &TamperError{Seq: r.Seq, Reason: "record of the session is missing from session_records"}
		case !mine && len(named) > 0 && named[0] == r.Seq:
			return rep, &TamperError{Seq: r.Seq, Reason: "session_records names a record that is not the session's"}
		case mine:
			named = named[1:]
			rep.SessionRecords++
		}
	}
	end := recs[len(recs)-1]
	if end.Type != CheckpointType {
		return rep, &TamperError{Seq: end.Seq, Reason: "the slice does not end at a signed checkpoint, so nothing vouches for it"}
	}
	if len(named) > 0 {
		return rep, &TamperError{Seq: named[0], Reason: "session_records names a record that is not in the slice, or out of order"}
	}
	rep.Last = end.Seq
	rep.Records = len(recs)
	rep.Checkpoints = int(v.rep.Checkpoints)
	return rep, nil
}

// ParseSlice decodes an evidence slice, which it treats as untrusted: at
// most MaxSliceBytes, only the fields of Slice and, in each record, of
// Record; the format must be SliceFormat, the session set and records 1 to
// MaxSliceRecords. Parsing checks nothing of the chain: use VerifySlice.
func ParseSlice(data []byte) (*Slice, error) {
	if len(data) > MaxSliceBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrMalformedSlice, len(data), MaxSliceBytes)
	}
	var raw struct {
		Format         string            `json:"format"`
		Session        string            `json:"session"`
		KeyID          string            `json:"key_id"`
		PublicKey      string            `json:"public_key"`
		SessionRecords []uint64          `json:"session_records"`
		Records        []json.RawMessage `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: bad JSON: %s", ErrMalformedSlice, truncateField(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the slice", ErrMalformedSlice)
	}
	switch {
	case raw.Format != SliceFormat:
		return nil, fmt.Errorf("%w: format %q, want %q", ErrMalformedSlice, truncateField(raw.Format), SliceFormat)
	case raw.Session == "" || len(raw.Session) > MaxFieldBytes:
		return nil, fmt.Errorf("%w: session is empty or longer than %d bytes", ErrMalformedSlice, MaxFieldBytes)
	case len(raw.Records) == 0:
		return nil, fmt.Errorf("%w: no records", ErrMalformedSlice)
	case len(raw.Records) > MaxSliceRecords:
		return nil, fmt.Errorf("%w: %d records, over the limit of %d", ErrMalformedSlice, len(raw.Records), MaxSliceRecords)
	case len(raw.SessionRecords) > len(raw.Records):
		return nil, fmt.Errorf("%w: session_records names more records than the slice holds", ErrMalformedSlice)
	}
	sl := &Slice{
		Format: raw.Format, Session: raw.Session, KeyID: raw.KeyID, PublicKey: raw.PublicKey,
		SessionRecords: slices.Clip(raw.SessionRecords), Records: make([]Record, len(raw.Records)),
	}
	if sl.SessionRecords == nil {
		sl.SessionRecords = []uint64{}
	}
	for i, b := range raw.Records {
		r, err := parseRecord(b)
		if err != nil {
			return nil, fmt.Errorf("%w: records[%d]: %v", ErrMalformedSlice, i, err)
		}
		sl.Records[i] = r
	}
	return sl, nil
}

// truncateField keeps untrusted text short in error messages.
func truncateField(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
