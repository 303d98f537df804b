package detect

import (
	"context"
	"errors"
	"testing"
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
