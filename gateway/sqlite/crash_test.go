package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/session"
	"supportgate/session/sessiontest"
)

func newCrashCmd(exe, path string) *exec.Cmd {
	cmd := exec.Command(exe, "-test.run=^TestCrashDurability$")
	cmd.Env = append(os.Environ(), "SQLITE_CRASH_CHILD="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

// crashChild writes until it is killed: per step a session created and
// ended, and an audit record; it prints the step number once all three have
// committed.
func crashChild() {
	st, err := Open(os.Getenv("SQLITE_CRASH_CHILD"), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := uint64(1); ; i++ {
		s := &session.Session{
			ID: fmt.Sprintf("s%06d", i), Agent: "alice", State: session.Active,
			CreatedAt: base.Add(time.Duration(i) * time.Millisecond), TokenHash: [32]byte{byte(i), byte(i >> 8), byte(i >> 16), 1},
			Version: 1,
		}
		if err := st.CreateSession(ctx, session.Change{Session: s}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		s.Version, s.State, s.EndedAt = 2, session.Ended, s.CreatedAt.Add(time.Second)
		if err := st.UpdateSessions(ctx, sessiontest.Changes(s)...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		r := audit.Record{Seq: i, Event: audit.Event{Time: s.EndedAt, Type: "session.ended", Session: s.ID}}
		if err := st.AppendAudit(ctx, []audit.Record{r}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(i)
	}
}

// readAcks reads acknowledged step numbers until it has seen n of them and
// returns the last one.
func readAcks(t *testing.T, r io.Reader, n uint64) uint64 {
	t.Helper()
	sc := bufio.NewScanner(r)
	var last uint64
	for sc.Scan() {
		v, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			continue // test framework noise
		}
		last = v
		if last >= n {
			return last
		}
	}
	t.Fatalf("child stopped after %d acknowledgements: %v", last, sc.Err())
	return 0
}
