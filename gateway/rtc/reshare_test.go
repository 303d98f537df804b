package rtc_test

import (
	"context"
	"testing"
	"time"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
)

// TestRelayReshare: the customer stops sharing and shares again, a new
// PeerConnection whose packets number from wherever its browser starts. The
// relay forwarded them as they were onto the viewer's one track, so a
// viewer saw its stream jump back and dropped every packet as a replay
// (the agent's video froze in about half of Chromium's re-shares). The
// relay now carries on the numbering and timestamps of the track.
func TestRelayReshare(t *testing.T) {
	_, _, serve, _ := testRoom(t, 41000, &fakeRec{})
	view, err := rtctest.View(rtctest.NewAPI(), serve(rtc.Viewer, "alice"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	size := rtctest.FrameSize(1_000_000, 30)
	share := func(round int) {
		t.Helper()
		conn, pub := publishTo(t, serve, rtctest.NewAPI())
		defer conn.Close()
		defer pub.Close()
		before := view.Packets.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := 0; view.Packets.Load() < before+200; i++ {
			if _, err := pub.WriteFrame(rtctest.Frame(size, i%30 == 0), 30); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("share %d: the viewer got %d packets in 10 s", round, view.Packets.Load()-before)
			case <-time.After(15 * time.Millisecond):
			}
		}
	}
	for round := range 3 {
		share(round + 1)
	}
}
