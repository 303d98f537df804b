package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrTampered matches every *TamperError with errors.Is.
var ErrTampered = errors.New("audit: log has been tampered with")

// TamperError names the first record at which a log stops verifying.
type TamperError struct {
	Seq    uint64 // position in the chain: the Seq the record there should have
	Line   int    // 1-based line of an exported file; 0 when verifying a Store
	Reason string // what is wrong, e.g. "hash does not match the record contents"
}

func (e *TamperError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("audit: line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("audit: record %d: %s", e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrTampered) true.
func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// Report summarises a log that verified.
type Report struct {
	Records        uint64 // records checked, checkpoints included
	Checkpoints    uint64 // checkpoint records, each with a valid signature
	LastSeq        uint64 // Seq of the newest record, 0 if empty
	Head           string // Hash of the newest record, "" if empty
	LastCheckpoint uint64 // Seq of the newest checkpoint, 0 if none
	// Unsigned counts the records after the last checkpoint. Nothing but
	// the chain vouches for them: a writer without the signing key could
	// have appended them, and records cut off after the last checkpoint
	// leave no trace (see the package doc on truncation).
	Unsigned uint64
}

// verifier checks records one at a time, in order.
type verifier struct {
	pub   ed25519.PublicKey
	start uint64 // records before the first one checked: 0 for a whole log
	prev  string
	rep   Report
}

func newVerifier(pub ed25519.PublicKey) (*verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	return &verifier{pub: pub, prev: GenesisHash}, nil
}

// next is the Seq the next record must have.
func (v *verifier) next() uint64 { return v.start + v.rep.Records + 1 }

// check verifies r as the next record; it returns why not, or "".
func (v *verifier) check(r Record) string {
	want := v.next()
	switch {
	case r.Seq > want:
		return fmt.Sprintf("seq %d, want %d: record %d is missing or out of order", r.Seq, want, want)
	case r.Seq < want:
		return fmt.Sprintf("seq %d, want %d: records are duplicated, inserted or out of order", r.Seq, want)
	}
	if r.Prev != v.prev {
		if want == 1 {
			return "prev is not the genesis hash"
		}
		return fmt.Sprintf("prev does not match the hash of record %d", want-1)
	}
	if r.ComputeHash() != r.Hash {
		return "hash does not match the record contents"
	}
	if r.Type == CheckpointType {
		if r.Actor != SystemActor {
			return fmt.Sprintf("checkpoint actor is %q, want %q", r.Actor, SystemActor)
		}
		sig, err := base64.StdEncoding.DecodeString(r.Sig)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return "checkpoint signature is malformed"
		}
		if !ed25519.Verify(v.pub, checkpointMessage(r.Hash), sig) {
			return "checkpoint signature does not verify with the given key"
		}
		v.rep.Checkpoints++
		v.rep.LastCheckpoint = r.Seq
		v.rep.Unsigned = 0
	} else {
		if r.Sig != "" {
			return "signature on a record that is not a checkpoint"
		}
		v.rep.Unsigned++
	}
	v.rep.Records++
	v.rep.LastSeq = r.Seq
	v.rep.Head = r.Hash
	v.prev = r.Hash
	return ""
}

// Verify checks the whole log in s against the checkpoint key pub (see the
// package doc for what that does and does not detect). A log that does not
// verify yields a *TamperError naming the first bad record; other errors are
// the Store's.
func Verify(ctx context.Context, s Store, pub ed25519.PublicKey) (Report, error) {
	v, err := newVerifier(pub)
	if err != nil {
		return Report{}, err
	}
	err = s.ScanAudit(ctx, 1, func(r Record) error {
		if reason := v.check(r); reason != "" {
			return &TamperError{Seq: v.next(), Reason: reason}
		}
		return nil
	})
	if err != nil {
		var te *TamperError
		if errors.As(err, &te) {
			return v.rep, te
		}
		return v.rep, fmt.Errorf("audit: verify: %w", err)
	}
	return v.rep, nil
}
