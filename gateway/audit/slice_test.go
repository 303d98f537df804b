package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
)

// sliceFixture is a log in which session "s1" has records 2, 4 and 8,
// among records of no session, with a checkpoint every 5 records:
//
//	seq   1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
//	kind  e S e S e C e S e e  e  C  e  e  C
//
// so the slice of s1 is records 2 to 12.
func sliceFixture(t testing.TB) *audittest.Store {
	t.Helper()
	s := audittest.NewStore()
	l := newLog(t, s, newClock(), 5)
	for _, sess := range []string{"", "s1", "", "s1", "", "", "s1", "", "", "", "", ""} {
		e := audit.Event{Type: "test.event", Actor: "alice", Role: "agent", Session: sess, Detail: map[string]string{"k": "v"}}
		if sess == "s1" {
			e.Type = "session.created"
		}
		if _, err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}

func cut(t testing.TB, s audit.Store) []byte {
	t.Helper()
	sl, err := audit.CutSlice(context.Background(), s, "s1", 2, 8, testPub)
	if err != nil {
		t.Fatalf("CutSlice: %v", err)
	}
	b, err := json.Marshal(sl)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSliceGolden pins the slice encoding; rewrite with -update only for
// a deliberate format change.
func TestSliceGolden(t *testing.T) {
	got := cut(t, sliceFixture(t))
	path := filepath.Join("testdata", "slice.json")
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
		t.Fatalf("slice differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
	rep, err := audit.VerifySlice(want, testPub)
	if err != nil {
		t.Fatalf("VerifySlice(%s): %v", path, err)
	}
	wantRep := audit.SliceReport{Session: "s1", First: 2, Last: 12, Records: 11, Checkpoints: 2,
		SessionRecords: 3, FirstType: "session.created", KeyID: audit.KeyID(testPub)}
	if rep != wantRep {
		t.Fatalf("got %+v, want %+v", rep, wantRep)
	}
	sl, err := audit.ParseSlice(want)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sl.SessionRecords, []uint64{2, 4, 8}) || sl.KeyID != audit.KeyID(testPub) ||
		sl.PublicKey != base64.StdEncoding.EncodeToString(testPub) {
		t.Fatalf("got session_records %v, key %s %s; want [2 4 8] and the test key", sl.SessionRecords, sl.KeyID, sl.PublicKey)
	}
}

// editSlice parses a slice, lets fn change it and encodes it again.
func editSlice(t *testing.T, data []byte, fn func(*audit.Slice)) []byte {
	t.Helper()
	sl, err := audit.ParseSlice(data)
	if err != nil {
		t.Fatal(err)
	}
	fn(sl)
	b, err := json.Marshal(sl)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifySliceTamper(t *testing.T) {
	intact := cut(t, sliceFixture(t))
	// Records are indexed from seq 2: Records[i] has Seq i+2.
	for _, tc := range []struct {
		name   string
		edit   func(*audit.Slice)
		seq    uint64
		reason string
	}{
		{"edit actor", func(s *audit.Slice) { s.Records[2].Actor = "mallory" }, 4, "hash does not match"},
		{"edit detail", func(s *audit.Slice) { s.Records[5].Detail["k"] = "w" }, 7, "hash does not match"},
		{"edit session away", func(s *audit.Slice) { s.Records[6].Session = "" }, 8, "hash does not match"},
		{"drop a line", func(s *audit.Slice) { s.Records = slices.Delete(s.Records, 3, 4) }, 5, "missing or out of order"},
		{"reorder lines", func(s *audit.Slice) { s.Records[3], s.Records[4] = s.Records[4], s.Records[3] }, 5, "missing or out of order"},
		{"duplicate a line", func(s *audit.Slice) { s.Records = slices.Insert(s.Records, 3, s.Records[2]) }, 5, "duplicated"},
		{"drop the closing checkpoint", func(s *audit.Slice) { s.Records = s.Records[:10] }, 11, "does not end at a signed checkpoint"},
		{"cut after the inner checkpoint and the next record", func(s *audit.Slice) { s.Records = s.Records[:6] }, 7, "does not end at a signed checkpoint"},
		{"forge the closing signature", func(s *audit.Slice) {
			s.Records[10].Sig = sign(otherKey, s.Records[10].Hash)
		}, 12, "signature does not verify"},
		{"strip the closing signature", func(s *audit.Slice) { s.Records[10].Sig = "" }, 12, "signature is malformed"},
		{"edit and re-hash the chain", func(s *audit.Slice) {
			s.Records[6].Detail["k"] = "forged"
			rehash(s.Records, 6)
		}, 12, "signature does not verify"},
		{"drop the first record", func(s *audit.Slice) {
			s.Records = s.Records[1:]
			s.SessionRecords = s.SessionRecords[1:]
		}, 3, "does not start at a record of the session"},
		{"session record left unnamed", func(s *audit.Slice) { s.SessionRecords = []uint64{2, 8} }, 4, "missing from session_records"},
		{"other record named", func(s *audit.Slice) { s.SessionRecords = []uint64{2, 3, 4, 8} }, 3, "not the session's"},
		{"record named outside the slice", func(s *audit.Slice) { s.SessionRecords = []uint64{2, 4, 8, 40} }, 40, "not in the slice"},
		{"session renamed", func(s *audit.Slice) { s.Session = "s2" }, 2, "does not start at a record of the session"},
		{"signature on an ordinary record", func(s *audit.Slice) { s.Records[1].Sig = s.Records[4].Sig }, 3, "not a checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.VerifySlice(editSlice(t, intact, tc.edit), testPub)
			var te *audit.TamperError
			if !errors.As(err, &te) || !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("got %v, want a *TamperError", err)
			}
			if te.Seq != tc.seq || !strings.Contains(te.Reason, tc.reason) {
				t.Errorf("got %v, want record %d: ...%s...", err, tc.seq, tc.reason)
			}
			if !strings.Contains(err.Error(), "record ") {
				t.Errorf("message %q does not name the record", err)
			}
		})
	}
}

func TestVerifySliceKey(t *testing.T) {
	intact := cut(t, sliceFixture(t))
	other := otherKey.Public().(ed25519.PublicKey)
	if _, err := audit.VerifySlice(intact, other); !errors.Is(err, audit.ErrSliceKey) {
		t.Errorf("verifying with another key: got %v, want ErrSliceKey", err)
	}
	// Without a key named, the other key still fails at the first checkpoint.
	unnamed := editSlice(t, intact, func(s *audit.Slice) { s.PublicKey, s.KeyID = "", "" })
	var te *audit.TamperError
	if _, err := audit.VerifySlice(unnamed, other); !errors.As(err, &te) || te.Seq != 6 {
		t.Errorf("verifying an unnamed slice with another key: got %v, want record 6 tampered", err)
	}
	if _, err := audit.VerifySlice(unnamed, testPub); err != nil {
		t.Errorf("verifying an unnamed slice with its key: %v", err)
	}
	if _, err := audit.VerifySlice(intact, nil); err == nil {
		t.Error("verifying without a key: got nil, want an error")
	}
}

func TestVerifySliceMalformed(t *testing.T) {
	intact := cut(t, sliceFixture(t))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not JSON", []byte("hello")},
		{"array", []byte("[]")},
		{"unknown field", bytes.Replace(intact, []byte(`"format"`), []byte(`"extra":1,"format"`), 1)},
		{"unknown record field", bytes.Replace(intact, []byte(`"seq":2,`), []byte(`"seq":2,"x":1,`), 1)},
		{"record not an object", bytes.Replace(intact, []byte(`"records":[`), []byte(`"records":[null,`), 1)},
		{"zero seq", bytes.Replace(intact, []byte(`"seq":2,`), []byte(`"seq":0,`), 1)},
		{"trailing data", append(slices.Clone(intact), "{}"...)},
		{"other format", bytes.Replace(intact, []byte(audit.SliceFormat), []byte("v0"), 1)},
		{"no session", bytes.Replace(intact, []byte(`"session":"s1"`), []byte(`"session":""`), 1)},
		{"no records", []byte(`{"format":"` + audit.SliceFormat + `","session":"s1","records":[]}`)},
		{"too many session records", []byte(`{"format":"` + audit.SliceFormat + `","session":"s1","session_records":[1,2],"records":[{"seq":1}]}`)},
		{"too large", append(slices.Clone(intact), bytes.Repeat([]byte(" "), audit.MaxSliceBytes)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.VerifySlice(tc.data, testPub)
			if !errors.Is(err, audit.ErrMalformedSlice) {
				t.Fatalf("got %v, want ErrMalformedSlice", err)
			}
		})
	}
}

func TestCutSlice(t *testing.T) {
	ctx := context.Background()
	t.Run("unsigned tail", func(t *testing.T) {
		s := audittest.NewStore()
		l := newLog(t, s, newClock(), 100)
		for _, sess := range []string{"s1", "", "s1"} {
			if _, err := l.Append(ctx, audit.Event{Type: "test.event", Session: sess}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := audit.CutSlice(ctx, s, "s1", 1, 3, testPub); !errors.Is(err, audit.ErrSliceUnsigned) {
			t.Fatalf("before a checkpoint: got %v, want ErrSliceUnsigned", err)
		}
		if err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		sl, err := audit.CutSlice(ctx, s, "s1", 1, 3, testPub)
		if err != nil {
			t.Fatalf("after a checkpoint: %v", err)
		}
		b, _ := json.Marshal(sl)
		if rep, err := audit.VerifySlice(b, testPub); err != nil || rep.Records != 4 || rep.SessionRecords != 2 {
			t.Fatalf("got %+v, %v; want 4 records, 2 of the session", rep, err)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		s := sliceFixture(t)
		for _, c := range []struct {
			session     string
			first, last uint64
		}{{"", 2, 8}, {"s1", 0, 8}, {"s1", 8, 2}} {
			if _, err := audit.CutSlice(ctx, s, c.session, c.first, c.last, testPub); err == nil {
				t.Errorf("CutSlice(%q, %d, %d): got nil, want an error", c.session, c.first, c.last)
			}
		}
		if _, err := audit.CutSlice(ctx, s, "s1", 2, 8, nil); err == nil {
			t.Error("CutSlice without a key: got nil, want an error")
		}
		if _, err := audit.CutSlice(ctx, s, "s1", 99, 99, testPub); err == nil {
			t.Error("CutSlice past the end: got nil, want an error")
		}
	})
	t.Run("too large", func(t *testing.T) {
		s := sliceFixture(t)
		_, err := audit.CutSlice(ctx, s, "s1", 1, 1+audit.MaxSliceRecords, testPub)
		if !errors.Is(err, audit.ErrSliceTooLarge) {
			t.Fatalf("got %v, want ErrSliceTooLarge", err)
		}
	})
	t.Run("too many records before a checkpoint", func(t *testing.T) {
		if testing.Short() {
			t.Skip("writes 100,000 records")
		}
		s := audittest.NewStore()
		// A clock that stands still, so that no interval checkpoint comes.
		l, err := audit.New(audit.Config{Store: s, Signer: testKey, CheckpointEvery: audit.MaxSliceRecords + 10,
			Now: func() time.Time { return time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC) }})
		if err != nil {
			t.Fatal(err)
		}
		for i := range audit.MaxSliceRecords + 1 {
			sess := ""
			if i == 0 {
				sess = "s1"
			}
			if _, err := l.Append(ctx, audit.Event{Type: "test.event", Session: sess}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.CutSlice(ctx, s, "s1", 1, 1, testPub); !errors.Is(err, audit.ErrSliceTooLarge) {
			t.Fatalf("got %v, want ErrSliceTooLarge", err)
		}
	})
}

func FuzzVerifySlice(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"` + audit.SliceFormat + `","session":"s1","session_records":[1],"records":[{"seq":1,"session":"s1"}]}`))
	f.Add([]byte(`{"records":[{"seq":18446744073709551615}],"session":"x","format":"` + audit.SliceFormat + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := audit.VerifySlice(data, testPub)
		var te *audit.TamperError
		switch {
		case err == nil:
			if rep.Records == 0 || rep.Last < rep.First || rep.SessionRecords == 0 {
				t.Fatalf("accepted a slice with report %+v", rep)
			}
		case errors.As(err, &te), errors.Is(err, audit.ErrMalformedSlice), errors.Is(err, audit.ErrSliceKey):
		default:
			t.Fatalf("got %T %v, want nil, a *TamperError, ErrMalformedSlice or ErrSliceKey", err, err)
		}
		// What parses re-encodes to something that parses the same.
		sl, perr := audit.ParseSlice(data)
		if perr != nil {
			return
		}
		again, merr := json.Marshal(sl)
		if merr != nil {
			return // e.g. a year outside 0..9999 cannot be encoded
		}
		sl2, perr := audit.ParseSlice(again)
		if perr != nil {
			t.Fatalf("re-parsing an encoded slice: %v", perr)
		}
		if len(sl2.Records) != len(sl.Records) || !slices.Equal(sl2.SessionRecords, sl.SessionRecords) {
			t.Fatalf("re-parsed slice differs")
		}
		for i := range sl.Records {
			if sl.Records[i].ComputeHash() != sl2.Records[i].ComputeHash() {
				t.Fatalf("record %d: hash changed across encoding", i)
			}
		}
	})
}
