package sqlite

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"supportgate/session"
)

// TestHelperEnrollments: saved enrollments read back as saved, survive a
// reopen, are replaced per session and deleted on request.
func TestHelperEnrollments(t *testing.T) {
	st, path := openTemp(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 30, 4, 5, 6, 7, time.UTC)
	a := session.HelperEnrollment{SessionID: "00000000000000aa", SSHHostKey: "ssh-ed25519 AAAA", Address: netip.MustParseAddr("100.96.0.2"), At: at}
	a.WireGuardKey[0], a.WireGuardKey[31] = 1, 2
	b := a
	b.SessionID, b.Address = "00000000000000bb", netip.MustParseAddr("100.96.0.3")
	for _, e := range []session.HelperEnrollment{a, b} {
		if err := st.SaveHelperEnrollment(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	a.Address = netip.MustParseAddr("100.96.0.9") // the session enrolled again
	if err := st.SaveHelperEnrollment(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.HelperEnrollments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []session.HelperEnrollment{a, b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}
	if err := st.DeleteHelperEnrollments(ctx, []string{a.SessionID, "unknown"}); err != nil {
		t.Fatal(err)
	}
	if got, err = st.HelperEnrollments(ctx); err != nil || len(got) != 1 || got[0].SessionID != b.SessionID {
		t.Fatalf("after delete: %+v, %v", got, err)
	}
}
