package audit_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func export(t *testing.T, s audit.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := audit.Export(context.Background(), s, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestExportGolden pins the export format and, through the hashes and
// signatures in it, the canonical encoding: if this fails, old logs no
// longer verify. Rewrite with -update only for a deliberate format change.
func TestExportGolden(t *testing.T) {
	s := filled(t, 5, 3)
	got := export(t, s)
	path := filepath.Join("testdata", "export.jsonl")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("export differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
	rep, err := audit.VerifyJSONL(bytes.NewReader(want), testPub)
	if err != nil {
		t.Fatalf("VerifyJSONL(%s): %v", path, err)
	}
	if rep.Records != 7 || rep.Checkpoints != 2 || rep.Unsigned != 0 {
		t.Fatalf("got %+v, want 7 records, 2 checkpoints, none unsigned", rep)
	}
}

func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := filled(t, 25, 10)
	want, err := audit.Verify(ctx, s, testPub)
	if err != nil {
		t.Fatal(err)
	}
	data := export(t, s)
	got, err := audit.VerifyJSONL(bytes.NewReader(data), testPub)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("VerifyJSONL: got %+v, want %+v as Verify", got, want)
	}
	// Import the export into a new store: it verifies there too.
	s2 := audittest.NewStore()
	err = audit.ReadJSONL(bytes.NewReader(data), func(r audit.Record) error {
		return s2.AppendAudit(ctx, []audit.Record{r})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := audit.Verify(ctx, s2, testPub); err != nil || got != want {
		t.Fatalf("Verify after import: got %+v, %v; want %+v", got, err, want)
	}
	if !bytes.Equal(export(t, s2), data) {
		t.Fatal("re-export differs from the export")
	}
}

func TestReadJSONLErrors(t *testing.T) {
	good := string(export(t, filled(t, 1, 100)))
	first := strings.SplitAfter(good, "\n")[0]
	long := `{"seq":1,"type":"` + strings.Repeat("a", audit.MaxLineBytes) + `"}` + "\n"
	for _, tc := range []struct {
		name string
		in   string
		line int
		want string
	}{
		{"not json", "hello\n", 1, "not a JSON object"},
		{"null", "null\n", 1, "not a JSON object"},
		{"array", "[]\n", 1, "not a JSON object"},
		{"empty line", first + "\n", 2, "empty line"},
		{"unknown field", `{"seq":1,"evil":true}` + "\n", 1, "unknown field"},
		{"trailing data", `{"seq":1} {"seq":2}` + "\n", 1, "trailing data"},
		{"zero seq", `{"type":"x"}` + "\n", 1, "seq is missing"},
		{"wrong type", `{"seq":"1"}` + "\n", 1, "bad JSON"},
		{"truncated", first[:len(first)/2], 1, "bad JSON"},
		{"too long", first + long, 2, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := audit.ReadJSONL(strings.NewReader(tc.in), func(audit.Record) error { return nil })
			var pe *audit.ParseError
			if !errors.As(err, &pe) || pe.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a ParseError at line %d containing %q", err, tc.line, tc.want)
			}
			_, err = audit.VerifyJSONL(strings.NewReader(tc.in), testPub)
			var te *audit.TamperError
			if !errors.As(err, &te) || te.Line != tc.line {
				t.Fatalf("VerifyJSONL: got %v, want a TamperError at line %d", err, tc.line)
			}
		})
	}
	t.Run("no final newline", func(t *testing.T) {
		n := 0
		if err := audit.ReadJSONL(strings.NewReader(strings.TrimSuffix(good, "\n")), func(audit.Record) error { n++; return nil }); err != nil || n != 2 {
			t.Fatalf("got %d records, %v; want 2, nil", n, err)
		}
	})
	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop")
		if err := audit.ReadJSONL(strings.NewReader(good), func(audit.Record) error { return stop }); err != stop {
			t.Fatalf("got %v, want the callback's error unchanged", err)
		}
	})
}

func FuzzReadJSONL(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.jsonl"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		lines := bytes.SplitAfter(b, []byte("\n"))
		f.Add(lines[0])
		f.Add(bytes.Join(lines[1:], nil))
	}
	f.Add([]byte(`{"seq":1,"detail":{"a":"b"},"time":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []audit.Record
		err := audit.ReadJSONL(bytes.NewReader(data), func(r audit.Record) error {
			recs = append(recs, r)
			return nil
		})
		var pe *audit.ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("got %T %v, want nil or *ParseError", err, err)
		}
		// VerifyJSONL must agree and never fail with anything but tampering.
		rep, verr := audit.VerifyJSONL(bytes.NewReader(data), testPub)
		var te *audit.TamperError
		if verr != nil && !errors.As(verr, &te) {
			t.Fatalf("VerifyJSONL: got %T %v, want nil or *TamperError", verr, verr)
		}
		if verr == nil && (err != nil || rep.Records != uint64(len(recs))) {
			t.Fatalf("VerifyJSONL accepted %d records, ReadJSONL got %d (%v)", rep.Records, len(recs), err)
		}
		// A parsed record's hash is a function of what re-exports: a
		// round trip through Export keeps it.
		if err == nil && len(recs) > 0 {
			s := audittest.NewStore()
			s.Tamper(func([]audit.Record) []audit.Record { return recs })
			var buf bytes.Buffer
			if xerr := audit.Export(context.Background(), s, &buf); xerr != nil {
				return // e.g. a year outside 0..9999 cannot be encoded
			}
			var again []audit.Record
			if err := audit.ReadJSONL(&buf, func(r audit.Record) error { again = append(again, r); return nil }); err != nil {
				t.Fatalf("re-reading an export: %v", err)
			}
			if len(again) != len(recs) {
				t.Fatalf("re-read %d records, want %d", len(again), len(recs))
			}
			for i := range recs {
				if again[i].ComputeHash() != recs[i].ComputeHash() {
					t.Fatalf("record %d: hash changed across export", i+1)
				}
			}
		}
	})
}
