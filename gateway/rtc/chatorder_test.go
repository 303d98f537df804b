package rtc_test

import (
	"sync"
	"testing"
	"time"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
)

// heldRecorder records chat in the order of its Chat calls. The call for
// the text hold, once recorded, returns only when release is closed.
type heldRecorder struct {
	hold    string
	held    chan struct{} // closed when the held call has begun
	release chan struct{}

	mu    sync.Mutex
	chats []string
}

func (r *heldRecorder) Media(string, time.Duration, []byte, bool) error { return nil }
func (r *heldRecorder) Event(string, map[string]string) error           { return nil }

func (r *heldRecorder) Chat(from, text string) error {
	r.mu.Lock()
	r.chats = append(r.chats, text)
	r.mu.Unlock()
	if text == r.hold {
		close(r.held)
		<-r.release
	}
	return nil
}

// TestChatRecordedInNumberOrder: two messages sent at once are recorded in
// the order of the numbers the room gives them, so that the recording and
// the pages agree on who said what first. The first is held between its
// recording and its numbering while the second is sent.
func TestChatRecordedInNumberOrder(t *testing.T) {
	rec := &heldRecorder{hold: "first", held: make(chan struct{}), release: make(chan struct{})}
	_, _, serve, _ := testRoom(t, 44200, rec)
	cust := serve(rtc.Publisher, "customer")
	hello(t, cust)
	agent := serve(rtc.Viewer, "alice")
	hello(t, agent)

	agent.WriteJSON(rtc.Message{Type: "chat", Text: "first"})
	<-rec.held
	cust.WriteJSON(rtc.Message{Type: "chat", Text: "second"})
	// Give "second" time to overtake "first" if the room lets it; the
	// room must not, so this wait ends by its timer.
	got := make(chan rtc.Message, 2)
	go func() {
		for {
			m, err := rtctest.Message(agent, "chat", nil)
			if err != nil {
				close(got)
				return
			}
			got <- m
		}
	}()
	seqs := map[string]uint64{}
	select {
	case m := <-got:
		t.Logf("%q (seq %d) reached the agent while %q was being recorded", m.Text, m.Seq, "first")
		seqs[m.Text] = m.Seq
	case <-time.After(500 * time.Millisecond):
	}
	close(rec.release)
	for len(seqs) < 2 {
		select {
		case m, ok := <-got:
			if !ok {
				t.Fatal("the agent's connection closed")
			}
			seqs[m.Text] = m.Seq
		case <-time.After(10 * time.Second):
			t.Fatalf("chat messages the agent got: %v", seqs)
		}
	}
	rec.mu.Lock()
	recorded := append([]string(nil), rec.chats...)
	rec.mu.Unlock()
	if len(recorded) != 2 {
		t.Fatalf("recorded %q", recorded)
	}
	if seqs[recorded[0]] != 1 || seqs[recorded[1]] != 2 {
		t.Fatalf("recorded in the order %q, numbered %v", recorded, seqs)
	}
}
