package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
)

// The fixture: 10 events with CheckpointEvery 4 and a final Close gives
//
//	seq   1 2 3 4 5 6 7 8 9 10 11 12 13
//	kind  e e e e C e e e e C  e  e  C
func fixture(t *testing.T) *audittest.Store {
	t.Helper()
	s := filled(t, 10, 4)
	if got, want := types(s.Records()), "eeeeCeeeeCeeC"; got != want {
		t.Fatalf("fixture: got %s, want %s", got, want)
	}
	return s
}

func rehash(recs []audit.Record, from int) {
	for i := from; i < len(recs); i++ {
		if i > 0 {
			recs[i].Prev = recs[i-1].Hash
		}
		recs[i].Hash = recs[i].ComputeHash()
	}
}

var otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

type tamperCase struct {
	name   string
	tamper func([]audit.Record) []audit.Record
	pub    ed25519.PublicKey // nil: testPub
	seq    uint64            // first bad record, which is also its line
	reason string
}

var tamperCases = []tamperCase{
	{
		name:   "edit actor",
		tamper: func(r []audit.Record) []audit.Record { r[6].Actor = "mallory"; return r },
		seq:    7, reason: "hash does not match",
	},
	{
		name:   "edit detail",
		tamper: func(r []audit.Record) []audit.Record { r[1].Detail["n"] = "99"; return r },
		seq:    2, reason: "hash does not match",
	},
	{
		name:   "edit time",
		tamper: func(r []audit.Record) []audit.Record { r[0].Time = r[0].Time.Add(1000); return r },
		seq:    1, reason: "hash does not match",
	},
	{
		name: "edit and rehash one record",
		tamper: func(r []audit.Record) []audit.Record {
			r[6].Actor = "mallory"
			r[6].Hash = r[6].ComputeHash()
			return r
		},
		seq: 8, reason: "prev does not match the hash of record 7",
	},
	{
		name: "edit and rehash up to the next checkpoint",
		tamper: func(r []audit.Record) []audit.Record {
			r[6].Actor = "mallory"
			rehash(r, 6)
			return r
		},
		seq: 10, reason: "signature does not verify",
	},
	{
		name:   "delete a record",
		tamper: func(r []audit.Record) []audit.Record { return slices.Delete(r, 3, 4) },
		seq:    4, reason: "record 4 is missing",
	},
	{
		name:   "delete the first record",
		tamper: func(r []audit.Record) []audit.Record { return r[1:] },
		seq:    1, reason: "record 1 is missing",
	},
	{
		name:   "delete a checkpoint",
		tamper: func(r []audit.Record) []audit.Record { return slices.Delete(r, 4, 5) },
		seq:    5, reason: "record 5 is missing",
	},
	{
		name:   "insert a copy",
		tamper: func(r []audit.Record) []audit.Record { return slices.Insert(r, 6, r[2]) },
		seq:    7, reason: "duplicated, inserted or out of order",
	},
	{
		name: "insert and renumber",
		tamper: func(r []audit.Record) []audit.Record {
			forged := r[2]
			forged.Actor = "mallory"
			r = slices.Insert(r, 6, forged)
			for i := range r {
				r[i].Seq = uint64(i + 1)
			}
			return r
		},
		seq: 7, reason: "prev does not match the hash of record 6",
	},
	{
		name: "swap two records",
		tamper: func(r []audit.Record) []audit.Record {
			r[5], r[6] = r[6], r[5]
			return r
		},
		seq: 6, reason: "record 6 is missing or out of order",
	},
	{
		name: "swap two records and their seqs",
		tamper: func(r []audit.Record) []audit.Record {
			r[5], r[6] = r[6], r[5]
			r[5].Seq, r[6].Seq = 6, 7
			return r
		},
		seq: 6, reason: "prev does not match",
	},
	{
		name: "change a signature",
		tamper: func(r []audit.Record) []audit.Record {
			sig := []byte(r[9].Sig)
			sig[10] ^= 1
			r[9].Sig = string(sig)
			return r
		},
		seq: 10, reason: "checkpoint signature",
	},
	{
		name:   "drop a signature",
		tamper: func(r []audit.Record) []audit.Record { r[4].Sig = ""; return r },
		seq:    5, reason: "checkpoint signature is malformed",
	},
	{
		name:   "signature on an event",
		tamper: func(r []audit.Record) []audit.Record { r[1].Sig = r[4].Sig; return r },
		seq:    2, reason: "not a checkpoint",
	},
	{
		name: "checkpoint turned into an event",
		tamper: func(r []audit.Record) []audit.Record {
			r[4].Type, r[4].Sig = "login.success", ""
			return r
		},
		seq: 5, reason: "hash does not match",
	},
	{
		name: "checkpoint signed by another key",
		tamper: func(r []audit.Record) []audit.Record {
			r[9].Sig = sign(otherKey, r[9].Hash)
			return r
		},
		seq: 10, reason: "signature does not verify",
	},
	{
		name:   "wrong key",
		tamper: func(r []audit.Record) []audit.Record { return r },
		pub:    otherKey.Public().(ed25519.PublicKey),
		seq:    5, reason: "signature does not verify",
	},
}

func TestVerifyTamper(t *testing.T) {
	ctx := context.Background()
	for _, tc := range tamperCases {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture(t)
			s.Tamper(tc.tamper)
			pub := tc.pub
			if pub == nil {
				pub = testPub
			}
			check := func(where string, err error, wantLine int) {
				t.Helper()
				var te *audit.TamperError
				if !errors.As(err, &te) {
					t.Fatalf("%s: got %v, want a *TamperError", where, err)
				}
				if !errors.Is(err, audit.ErrTampered) {
					t.Errorf("%s: errors.Is(err, ErrTampered) is false", where)
				}
				if te.Seq != tc.seq || te.Line != wantLine {
					t.Errorf("%s: got seq %d line %d (%v), want seq %d line %d", where, te.Seq, te.Line, err, tc.seq, wantLine)
				}
				if !strings.Contains(te.Reason, tc.reason) {
					t.Errorf("%s: got reason %q, want it to contain %q", where, te.Reason, tc.reason)
				}
			}
			_, err := audit.Verify(ctx, s, pub)
			check("Verify", err, 0)

			var buf bytes.Buffer
			if err := audit.Export(ctx, s, &buf); err != nil {
				t.Fatal(err)
			}
			_, err = audit.VerifyJSONL(&buf, pub)
			check("VerifyJSONL", err, int(tc.seq))
		})
	}
}

// TestVerifyLimits pins down what cannot be detected from the log alone.
func TestVerifyLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("truncated tail verifies", func(t *testing.T) {
		s := fixture(t)
		s.Tamper(func(r []audit.Record) []audit.Record { return r[:11] })
		rep, err := audit.Verify(ctx, s, testPub)
		if err != nil {
			t.Fatal(err)
		}
		if rep.LastSeq != 11 || rep.LastCheckpoint != 10 || rep.Unsigned != 1 {
			t.Fatalf("got %+v, want LastSeq 11, LastCheckpoint 10, Unsigned 1", rep)
		}
	})
	t.Run("forged unsigned tail is counted", func(t *testing.T) {
		s := fixture(t)
		s.Tamper(func(r []audit.Record) []audit.Record {
			f := audit.Record{Seq: 14, Event: r[0].Event, Prev: r[12].Hash}
			f.Actor = "mallory"
			f.Hash = f.ComputeHash()
			return append(r, f)
		})
		rep, err := audit.Verify(ctx, s, testPub)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Unsigned != 1 || rep.LastCheckpoint != 13 {
			t.Fatalf("got %+v, want Unsigned 1 after checkpoint 13", rep)
		}
	})
	t.Run("empty log", func(t *testing.T) {
		rep, err := audit.Verify(ctx, audittest.NewStore(), testPub)
		if err != nil || rep != (audit.Report{}) {
			t.Fatalf("got %+v, %v; want an empty report", rep, err)
		}
	})
}

func TestTamperErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *audit.TamperError
		want string
	}{
		{&audit.TamperError{Seq: 12, Reason: "hash does not match the record contents"}, "audit: record 12: hash does not match the record contents"},
		{&audit.TamperError{Seq: 12, Line: 12, Reason: "x"}, "audit: line 12: x"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
