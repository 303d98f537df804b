package recorder

import (
	"errors"
	"fmt"
)

var (
	// ErrTampered matches every *TamperError.
	ErrTampered = errors.New("recording tampered")
	// ErrCutShort matches every *CutShortError.
	ErrCutShort = errors.New("recording cut short")
)

// TamperError reports the first record that fails verification. Record 0
// is the header.
type TamperError struct {
	Record uint64
	Reason string
}

func (e *TamperError) Error() string {
	if e.Record == 0 {
		return "recorder: header: " + e.Reason
	}
	return fmt.Sprintf("recorder: record %d: %s", e.Record, e.Reason)
}

func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// CutShortError reports an intact recording without its end record, as a
// crash or a truncation leaves it.
type CutShortError struct {
	Records uint64 // intact records before the cut
	Signed  uint64 // last record covered by a signed checkpoint (0: none)
	Reason  string
}

func (e *CutShortError) Error() string {
	return fmt.Sprintf("recorder: recording cut short after record %d (signed through record %d): %s", e.Records, e.Signed, e.Reason)
}

func (e *CutShortError) Is(target error) bool { return target == ErrCutShort }
