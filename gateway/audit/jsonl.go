package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes bounds one line of an exported log, far above any record that
// Event.Validate admits even with every byte JSON-escaped.
const MaxLineBytes = 1 << 20

// ParseError reports a line of an exported log that is not a record.
type ParseError struct {
	Line int   // 1-based
	Err  error // what is wrong
}

func (e *ParseError) Error() string { return fmt.Sprintf("audit: line %d: %v", e.Line, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// Export writes every record in s, in Seq order, as JSON lines: one Record
// object per line, each ending in "\n".
func Export(ctx context.Context, s Store, w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	err := s.ScanAudit(ctx, 1, func(r Record) error {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("audit: export record %d: %w", r.Seq, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// VerifyJSONL runs Verify's checks over an exported log. A file that does
// not verify, including a line that is not a record, yields a *TamperError
// whose Line is the first bad line; read errors are returned as they are.
func VerifyJSONL(r io.Reader, pub ed25519.PublicKey) (Report, error) {
	v, err := newVerifier(pub)
	if err != nil {
		return Report{}, err
	}
	err = readJSONL(r, func(line int, rec Record) error {
		if reason := v.check(rec); reason != "" {
			return &TamperError{Seq: v.next(), Line: line, Reason: reason}
		}
		return nil
	})
	var pe *ParseError
	if errors.As(err, &pe) {
		return v.rep, &TamperError{Seq: v.next(), Line: pe.Line, Reason: "not a record: " + pe.Err.Error()}
	}
	return v.rep, err
}

// ReadJSONL parses an exported log, which it treats as untrusted, calling fn
// for each record in file order. Every line must be one JSON object with only
// Record's fields and a non-zero seq, at most MaxLineBytes long; empty lines
// are errors, a missing final newline is not. A bad line stops the read with
// a *ParseError; an error from fn stops it and is returned unchanged. Parsing
// checks nothing of the chain: use VerifyJSONL for that.
func ReadJSONL(r io.Reader, fn func(Record) error) error {
	return readJSONL(r, func(_ int, rec Record) error { return fn(rec) })
}

func readJSONL(r io.Reader, fn func(line int, rec Record) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for line := 1; ; line++ {
		b, err := readLine(br, buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				return &ParseError{Line: line, Err: err}
			}
			return fmt.Errorf("audit: line %d: read: %w", line, err)
		}
		buf = b
		rec, err := parseRecord(b)
		if err != nil {
			return &ParseError{Line: line, Err: err}
		}
		if err := fn(line, rec); err != nil {
			return err
		}
	}
}

var errLineTooLong = fmt.Errorf("line is longer than %d bytes", MaxLineBytes)

// readLine returns the next line without its "\n", reusing buf, or io.EOF.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineBytes+1 {
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return buf, nil
		case err != nil:
			return nil, err
		}
		return buf[:len(buf)-1], nil
	}
}

func parseRecord(b []byte) (Record, error) {
	var rec Record
	t := bytes.TrimLeft(b, " \t\r")
	if len(t) == 0 {
		return rec, errors.New("empty line")
	}
	if t[0] != '{' {
		return rec, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return Record{}, fmt.Errorf("bad JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, errors.New("trailing data after the record")
	}
	if rec.Seq == 0 {
		return Record{}, errors.New("seq is missing or zero")
	}
	return rec, nil
}
