package rtc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"supportgate/gateway/rtc"
	"supportgate/gateway/rtc/rtctest"
)

// limitsRoom is a room of session "s1" with opt, on a relay that never
// needs a port here (the tests make no PeerConnections), serving
// participants over pipes.
func limitsRoom(t *testing.T, opt rtc.RoomOptions) func(rtc.Role, string) *rtctest.Pipe {
	t.Helper()
	relay, err := rtc.New(rtc.Config{Loopback: true, UDPPortMin: 44000, UDPPortMax: 44099})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	sctx, endSession := context.WithCancel(context.Background())
	room, err := relay.Room(sctx, "s1", nil, opt)
	if err != nil {
		endSession()
		t.Fatal(err)
	}
	serving := new(sync.WaitGroup)
	t.Cleanup(serving.Wait)
	t.Cleanup(endSession)
	return servePipes(room, serving)
}

// hello reads a participant's hello and returns whether it allows chat.
func hello(t *testing.T, c *rtctest.Pipe) bool {
	t.Helper()
	m, err := rtctest.Message(c, "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	return m.Chat != nil && *m.Chat
}

// TestChatNeedsScope: in a session whose customer did not grant chat, the
// room says so in its hello and passes no chat message on.
func TestChatNeedsScope(t *testing.T) {
	serve := limitsRoom(t, rtc.RoomOptions{})
	cust := serve(rtc.Publisher, "customer")
	agent := serve(rtc.Publisher, "alice")
	if hello(t, cust) || hello(t, agent) {
		t.Fatal("hello allows chat in a session without the chat scope")
	}
	agent.WriteJSON(rtc.Message{Type: "chat", Text: "please type your password here"})
	m, err := rtctest.Message(agent, "error", nil)
	if err != nil || !strings.Contains(m.Text, "chat is not part of this session") {
		t.Fatalf("chat without the scope: %+v, %v", m, err)
	}
	// The customer gets nothing: the next message they see is the answer
	// to their own chat, also refused.
	cust.WriteJSON(rtc.Message{Type: "chat", Text: "hello?"})
	if m, err := rtctest.Message(cust, "error", func(o rtc.Message) {
		t.Errorf("the customer got %+v", o)
	}); err != nil || !strings.Contains(m.Text, "chat is not part") {
		t.Fatalf("the customer's chat: %+v, %v", m, err)
	}
}

// TestChatPaced: a participant sends at most chatBurst (10) messages at
// once; the rest are refused, not relayed.
func TestChatPaced(t *testing.T) {
	serve := limitsRoom(t, rtc.RoomOptions{Chat: true})
	agent := serve(rtc.Publisher, "alice")
	if !hello(t, agent) {
		t.Fatal("hello does not allow chat in a session with the chat scope")
	}
	for i := range 15 {
		agent.WriteJSON(rtc.Message{Type: "chat", Text: fmt.Sprint("line ", i)})
	}
	relayed, refused := 0, 0
	for relayed+refused < 15 {
		var m rtc.Message
		if err := agent.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Type == "chat":
			relayed++
		case m.Type == "error" && strings.Contains(m.Text, "too many chat messages"):
			refused++
		default:
			t.Fatalf("unexpected %+v", m)
		}
	}
	if relayed != 10 || refused != 5 {
		t.Fatalf("15 messages at once: %d relayed, %d refused; want 10 and 5", relayed, refused)
	}
}

// TestRoomFull: at most 4 connections of one name, 16 in all.
func TestRoomFull(t *testing.T) {
	serve := limitsRoom(t, rtc.RoomOptions{})
	for range 4 {
		hello(t, serve(rtc.Publisher, "alice"))
	}
	fifth := serve(rtc.Publisher, "alice")
	if m, err := rtctest.Message(fifth, "error", nil); err != nil || !strings.Contains(m.Text, "too many connections") {
		t.Fatalf("fifth connection of one name: %+v, %v", m, err)
	}
	for _, name := range []string{"bob", "carol", "dave"} {
		for range 4 {
			hello(t, serve(rtc.Viewer, name))
		}
	}
	if m, err := rtctest.Message(serve(rtc.Viewer, "erin"), "error", nil); err != nil || !strings.Contains(m.Text, "at most 16") {
		t.Fatalf("seventeenth connection: %+v, %v", m, err)
	}
}

// TestChatHistory: what is said while a viewer is away reaches them when
// they come back, after hello and before anything new; each message
// carries its number, so a page that had some of them shows each once.
// (Who gets what was said before they first joined: TestChatHistoryNewcomer.)
func TestChatHistory(t *testing.T) {
	serve := limitsRoom(t, rtc.RoomOptions{Chat: true})
	cust := serve(rtc.Publisher, "customer")
	hello(t, cust)
	agent := serve(rtc.Viewer, "alice")
	hello(t, agent)
	agent.WriteJSON(rtc.Message{Type: "chat", Text: "can you open the settings?"})
	if m, err := rtctest.Message(cust, "chat", nil); err != nil || m.Seq != 1 {
		t.Fatalf("first message: %+v, %v", m, err)
	}
	agent.Close() // the agent's network drops
	cust.WriteJSON(rtc.Message{Type: "chat", Text: "done, what next?"})
	if m, err := rtctest.Message(cust, "chat", nil); err != nil || m.Seq != 2 {
		t.Fatalf("second message: %+v, %v", m, err)
	}

	back := serve(rtc.Viewer, "alice")
	var first rtc.Message
	if err := back.ReadJSON(&first); err != nil || first.Type != "hello" {
		t.Fatalf("first message after reconnecting: %+v, %v", first, err)
	}
	h, err := rtctest.Message(back, "history", func(o rtc.Message) { t.Errorf("before the history: %+v", o) })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range h.History {
		got = append(got, fmt.Sprintf("%d %s %s: %s", m.Seq, m.Role, m.From, m.Text))
	}
	want := []string{"1 viewer alice: can you open the settings?", "2 publisher customer: done, what next?"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history after reconnecting:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	cust.WriteJSON(rtc.Message{Type: "chat", Text: "hello again"})
	if m, err := rtctest.Message(back, "chat", nil); err != nil || m.Seq != 3 || m.Text != "hello again" {
		t.Fatalf("after the history: %+v, %v", m, err)
	}
}

// TestChatHistoryBounded: a room keeps its last 100 messages.
func TestChatHistoryBounded(t *testing.T) {
	serve := limitsRoom(t, rtc.RoomOptions{Chat: true, Agent: "late"})
	// Eleven participants of ten messages each (their burst): 110.
	for i := range 11 {
		p := serve(rtc.Viewer, fmt.Sprint("agent", i))
		hello(t, p)
		for j := range 10 {
			p.WriteJSON(rtc.Message{Type: "chat", Text: fmt.Sprint(i, "-", j)})
			if _, err := rtctest.Message(p, "chat", nil); err != nil {
				t.Fatal(err)
			}
		}
		p.Close()
	}
	late := serve(rtc.Viewer, "late")
	hello(t, late)
	h, err := rtctest.Message(late, "history", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.History); n != 100 || h.History[0].Seq != 11 || h.History[99].Seq != 110 || h.History[99].Text != "10-9" {
		t.Fatalf("history of 110 messages: %d kept, from %d to %d", n, h.History[0].Seq, h.History[n-1].Seq)
	}
}

// TestChatHistoryNewcomer: the customer agreed to chat with the session's
// agent. A supervisor who starts watching later sees the chat from then
// on, not what the customer wrote to the agent before (a supervisor may
// watch live but not replay). Once there, what is said while they are
// away reaches them when they come back. The agent, the customer's party,
// gets what the customer wrote before the agent's viewer opened.
func TestChatHistoryNewcomer(t *testing.T) {
	serve := limitsRoom(t, rtc.RoomOptions{Chat: true, Agent: "alice"})
	cust := serve(rtc.Publisher, "customer")
	hello(t, cust)
	say := func(text string) uint64 {
		t.Helper()
		cust.WriteJSON(rtc.Message{Type: "chat", Text: text})
		m, err := rtctest.Message(cust, "chat", nil)
		if err != nil || m.Text != text {
			t.Fatalf("saying %q: %+v, %v", text, m, err)
		}
		return m.Seq
	}
	history := func(c *rtctest.Pipe) string {
		t.Helper()
		m, err := rtctest.Message(c, "history", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range m.History {
			got = append(got, h.Text)
		}
		return strings.Join(got, "|")
	}
	say("my account number is 12345")
	agent := serve(rtc.Viewer, "alice")
	hello(t, agent)
	if got, want := history(agent), "my account number is 12345"; got != want {
		t.Errorf("the agent's history: %q, want %q", got, want)
	}

	sam := serve(rtc.Viewer, "sam")
	hello(t, sam)
	seq := say("thanks")
	m, err := rtctest.Message(sam, "chat", func(o rtc.Message) {
		if o.Type == "history" {
			t.Errorf("a supervisor who just joined got the chat said before: %+v", o.History)
		}
	})
	if err != nil || m.Seq != seq {
		t.Fatalf("the supervisor's first chat: %+v, %v; want seq %d", m, err, seq)
	}
	sam.Close()
	say("is anyone else watching?")
	back := serve(rtc.Viewer, "sam")
	hello(t, back)
	if got, want := history(back), "thanks|is anyone else watching?"; got != want {
		t.Errorf("the supervisor's history on coming back: %q, want %q", got, want)
	}
}

// TestRelayCloseIsNotSessionEnd: when the session ends, its participants
// are told so; when the relay closes (the gateway stopping, the session
// going on after the restart), their sockets just close, so that the
// pages reconnect instead of saying the session ended.
func TestRelayCloseIsNotSessionEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ended bool // the session ends, rather than the relay closing
	}{{"session ends", true}, {"relay closes", false}} {
		t.Run(tc.name, func(t *testing.T) {
			relay, err := rtc.New(rtc.Config{Loopback: true, UDPPortMin: 44100, UDPPortMax: 44199})
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			sctx, endSession := context.WithCancel(context.Background())
			defer endSession()
			room, err := relay.Room(sctx, "s1", nil, rtc.RoomOptions{Chat: true})
			if err != nil {
				t.Fatal(err)
			}
			var serving sync.WaitGroup
			defer serving.Wait()
			cust := servePipes(room, &serving)(rtc.Publisher, "customer")
			hello(t, cust)
			if tc.ended {
				endSession()
			} else {
				relay.Close()
			}
			var got []string
			for {
				var m rtc.Message
				if err := cust.ReadJSON(&m); err != nil {
					break
				}
				got = append(got, m.Type)
			}
			if saidEnded := slices.Contains(got, "ended"); saidEnded != tc.ended {
				t.Fatalf("messages before the socket closed: %v; want \"ended\" %v", got, tc.ended)
			}
		})
	}
}
