package detect

import (
	"context"
	"errors"
	"testing"
	"time"

	"supportgate/gateway/audit"
)

func TestDirStore(t *testing.T) {
	ctx := context.Background()
	d := DirStore{Dir: t.TempDir()}
	if _, err := d.Load(ctx, "alice"); !errors.Is(err, ErrNoBaseline) {
		t.Fatalf("Load of a new agent: got %v, want ErrNoBaseline", err)
	}
	if err := d.Save(ctx, "alice", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(ctx, "alice", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	b, err := d.Load(ctx, "alice")
	if err != nil || string(b) != `{"v":2}` {
		t.Fatalf("Load = %q, %v; want {\"v\":2}", b, err)
	}
	for _, bad := range []string{"../etc/passwd", "", "A", "a/b"} {
		if err := d.Save(ctx, bad, nil); err == nil {
			t.Errorf("Save(%q) succeeded", bad)
		}
	}
}

func TestAlertsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	store := DirStore{Dir: t.TempDir()}
	d, err := New(Config{Alerts: store})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		d.ObserveWait(ctx, audit.Record{Seq: uint64(i + 1), Event: audit.Event{Time: time.Date(2026, 3, 2, 10, i, 0, 0, time.UTC),
			Type: "login.mfa_failure", Actor: "alice", Remote: "198.51.100.7"}})
	}
	d.Flush(ctx)
	as := d.Alerts()
	if len(as) != 1 {
		t.Fatalf("got %d alerts, want 1", len(as))
	}
	if _, err := d.Ack(as[0].ID, "sam", "called alice"); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d2, err := New(Config{Alerts: store})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	got, ok := d2.Alert(as[0].ID)
	if !ok || got.State != Acknowledged || got.Note != "called alice" || got.By != "sam" {
		t.Fatalf("after restart: %+v, %v", got, ok)
	}
	for i := range 4 {
		d2.ObserveWait(ctx, audit.Record{Seq: uint64(i + 10), Event: audit.Event{Time: time.Date(2026, 3, 3, 10, i, 0, 0, time.UTC),
			Type: "login.mfa_failure", Actor: "bob", Remote: "198.51.100.8"}})
	}
	d2.Flush(ctx)
	for _, a := range d2.Alerts() {
		if a.Agent == "bob" && a.ID == as[0].ID {
			t.Fatalf("a new alert reused id %s", a.ID)
		}
	}
}
