package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// referenceCanonical is how the canonical form was first defined: the
// encoding/json encoding of this struct (field order is the struct order;
// encoding/json sorts Detail's keys). appendCanonical must write the same
// bytes, or every stored hash breaks.
func referenceCanonical(t testing.TB, r Record) []byte {
	d := r.Detail
	if d == nil {
		d = map[string]string{}
	}
	b, err := json.Marshal(struct {
		Seq     uint64            `json:"seq"`
		Time    string            `json:"time"`
		Type    string            `json:"type"`
		Actor   string            `json:"actor"`
		Role    string            `json:"role"`
		Session string            `json:"session"`
		Remote  string            `json:"remote"`
		Detail  map[string]string `json:"detail"`
	}{r.Seq, r.Time.UTC().Format(time.RFC3339Nano), r.Type, r.Actor, r.Role, r.Session, r.Remote, d})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkCanonical(t testing.TB, r Record) {
	t.Helper()
	want := referenceCanonical(t, r)
	if got := r.appendCanonical(nil); !bytes.Equal(got, want) {
		t.Fatalf("canonical form of %+v:\n got %s\nwant %s", r, got, want)
	}
	if len(r.Detail) > 0 {
		want, err := json.Marshal(r.Detail)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendDetailJSON(nil, r.Detail); !bytes.Equal(got, want) {
			t.Fatalf("AppendDetailJSON(%q):\n got %s\nwant %s", r.Detail, got, want)
		}
	}
}

// tricky are strings that encoding/json escapes, each in its own way.
var tricky = []string{
	"", "plain", `quote " and backslash \`, "<script>&amp;</script>", "\b\f\n\r\t", "\x00\x01\x1f\x7f",
	"caf\u00e9 \u2603 \U0001F600", "line\u2028para\u2029", "bad \xff utf8 \xc3", "\xe2\x80", "'single'", "/slash/",
}

func TestCanonicalMatchesEncodingJSON(t *testing.T) {
	base := Record{Seq: 42, Event: Event{Time: time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.FixedZone("X", -7*3600)),
		Type: "session.approved", Actor: "alice", Role: "agent", Session: "0123456789abcdef", Remote: "192.0.2.1",
		Detail: map[string]string{"agent": "alice", "scopes": "view,chat"}}}
	checkCanonical(t, base)
	checkCanonical(t, Record{}) // zero everything, nil Detail
	empty := base
	empty.Detail = map[string]string{}
	checkCanonical(t, empty)
	for _, s := range tricky {
		r := base
		r.Type, r.Actor, r.Role, r.Session, r.Remote = s, s, s, s, s
		r.Detail = map[string]string{s: s, "z" + s: "", "a": s}
		checkCanonical(t, r)
	}
	many := base
	many.Detail = map[string]string{}
	for i := range 40 { // more keys than appendCanonical keeps on the stack
		many.Detail[string(rune('A'+i))+"k"] = tricky[i%len(tricky)]
	}
	checkCanonical(t, many)
	for _, tm := range []time.Time{{}, time.Unix(0, 1), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)} {
		r := base
		r.Time = tm
		checkCanonical(t, r)
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range tricky {
		f.Add(uint64(7), int64(1700000000123456789), s, s, s, s)
	}
	f.Fuzz(func(t *testing.T, seq uint64, nanos int64, typ, actor, k, v string) {
		r := Record{Seq: seq, Event: Event{Time: time.Unix(0, nanos), Type: typ, Actor: actor, Role: v, Session: k,
			Remote: typ + v, Detail: map[string]string{k: v, v: k, actor: typ}}}
		checkCanonical(t, r)
	})
}
