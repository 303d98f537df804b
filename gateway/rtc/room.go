package rtc

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Recorder receives what a room records: the recorder.Writer of the
// session satisfies it. Its methods are called concurrently. Media must
// not keep frame after it returns (the room reuses the buffer).
type Recorder interface {
	Media(codec string, ts time.Duration, frame []byte, keyframe bool) error
	Chat(from, text string) error
	Event(kind string, detail map[string]string) error
}

// Conn is a message connection to one page, such as a gorilla websocket:
// ReadJSON is called from one goroutine and WriteJSON from another.
// Close must unblock ReadJSON.
type Conn interface {
	ReadJSON(v any) error
	WriteJSON(v any) error
	Close() error
}

// Role is what a participant does in a room.
type Role string

// Roles.
const (
	Publisher Role = "publisher" // the customer: shares the screen
	Viewer    Role = "viewer"    // the agent or a supervisor: watches
)

// Message is one signaling or chat message, in either direction.
//
// Server to page: "hello" (ice_servers, sharing), "offer" (to a viewer),
// "answer" (to the publisher), "chat" (from, role, text, time),
// "sharing" (sharing), "ended" (reason), "error" (text).
// Page to server: "offer" (publisher), "answer" (viewer), "candidate"
// (an ICE candidate the page gathered after its offer or answer: pages
// trickle them rather than wait for gathering to end), "chat" (text),
// "stop" (publisher stops sharing). The relay's own offers and answers
// carry all its candidates.
type Message struct {
	Type       string                   `json:"type"`
	SDP        string                   `json:"sdp,omitempty"`
	Candidate  *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	From       string                   `json:"from,omitempty"`
	Role       Role                     `json:"role,omitempty"`
	Text       string                   `json:"text,omitempty"`
	Time       *time.Time               `json:"time,omitempty"`
	Sharing    *bool                    `json:"sharing,omitempty"`
	Reason     string                   `json:"reason,omitempty"`
	ICEServers []webrtc.ICEServer       `json:"ice_servers,omitempty"`
	Chat       *bool                    `json:"chat,omitempty"` // hello: whether chat is allowed
	// Seq numbers a room's chat messages from 1, so that a page that
	// reconnects shows each message once.
	Seq uint64 `json:"seq,omitempty"`
	// Room, in hello, names this room apart from any other of the same
	// session: a gateway restarted after a crash makes a new room, whose
	// Seq starts from 1 again, and a page that reconnects to it must
	// forget the numbers it saw.
	Room string `json:"room,omitempty"`
	// History, in a "history" message after hello, holds the room's
	// recent chat (oldest first) that the participant may see: what was
	// said while they were away, or before they joined if they are the
	// customer or the session's agent (RoomOptions.Agent).
	History []Message `json:"history,omitempty"`
}

// MaxChat is the longest chat message accepted, in characters.
const MaxChat = 2000

// Chat pace, per participant: chatBurst messages at once, then one every
// chatEvery. A person types slower; a flood would fill the recording
// (which ends the session at its size cap) and the others' queues.
const (
	chatBurst = 10
	chatEvery = time.Second
)

// Participants of one room: at most maxMembers connections in all, and
// maxPerName of one name (a viewer with a few tabs, a customer whose old
// socket has yet to time out). Each viewer costs a PeerConnection.
const (
	maxMembers = 16
	maxPerName = 4
)

// RoomOptions are what the session granted the room.
type RoomOptions struct {
	// Chat allows chat messages (the chat scope). Without it the room
	// refuses them and its hello says so, so pages hide the chat.
	Chat bool
	// Agent is the session's agent. The customer agreed to chat with
	// them, so they and the customer (the publisher) get the room's whole
	// chat history when they join; any other viewer (a supervisor
	// watching) gets only what was said since they first joined.
	Agent string
}

// A room keeps its last chatHistory messages, and at most
// chatHistoryBytes of their text, for those who join or come back.
const (
	chatHistory      = 100
	chatHistoryBytes = 64 << 10
	// chatJoiners is how many other viewers' first joins a room
	// remembers; a viewer past it gets no history.
	chatJoiners = 256
)

const (
	memberQueue   = 64                     // messages buffered per participant
	maxCandidates = 64                     // trickled candidates taken per PeerConnection
	gatherWait    = 5 * time.Second        // ICE gathering limit
	pliInterval   = 200 * time.Millisecond // at most one keyframe request per this
	writeTimeout  = 5 * time.Second
)

// Room is the relay of one session.
type Room struct {
	relay  *Relay
	id     string
	nonce  string // Message.Room: random, told apart from the session's other rooms
	rec    Recorder
	opt    RoomOptions
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time

	packets       atomic.Int64 // RTP packets received from publishers
	frames        atomic.Int64 // frames handed to the recorder
	recordDropped atomic.Int64 // packets dropped from the recording (mediaRecorder)

	// out is where the outgoing track's numbering stands (see renumber).
	out outNumbering

	// chatMu is held from recording a chat message to numbering it, so
	// that messages are recorded in the order of their numbers. It is
	// taken before mu.
	chatMu sync.Mutex

	mu      sync.Mutex // guards the fields below
	members map[*member]struct{}
	video   *webrtc.TrackLocalStaticRTP // the outgoing track, of the last publisher's codec
	senders map[*webrtc.RTPSender]struct{}
	pub     *publisher
	lastPLI time.Time
	closed  bool
	chatSeq uint64            // the last chat message's Seq
	history []Message         // the recent chat, oldest first (see keepChatLocked)
	histLen int               // bytes of text in history
	joined  map[string]uint64 // other viewers' names: chatSeq when they first joined
	wg      sync.WaitGroup    // forwarders and RTCP readers
}

type member struct {
	name   string
	role   Role
	out    chan Message
	cancel context.CancelFunc

	// chatTokens and chatAt pace the member's chat (chatBurst, chatEvery);
	// only the member's own read loop uses them.
	chatTokens float64
	chatAt     time.Time
}

type publisher struct {
	pc   *webrtc.PeerConnection
	ssrc atomic.Uint32
}

func newRoom(r *Relay, ctx context.Context, id string, rec Recorder, opt RoomOptions) (*Room, error) {
	video, err := webrtc.NewTrackLocalStaticRTP(videoCodecs[0].RTPCodecCapability, "screen", "supportgate-"+id)
	if err != nil {
		return nil, fmt.Errorf("rtc: %w", err)
	}
	rm := &Room{relay: r, id: id, nonce: rand.Text(), rec: rec, opt: opt, video: video, start: time.Now(),
		members: map[*member]struct{}{}, senders: map[*webrtc.RTPSender]struct{}{}}
	rm.ctx, rm.cancel = context.WithCancel(ctx)
	return rm, nil
}

// Done is closed when the room has ended.
func (rm *Room) Done() <-chan struct{} { return rm.ctx.Done() }

// Packets is the number of RTP packets received from publishers.
func (rm *Room) Packets() int64 { return rm.packets.Load() }

// Frames is the number of video frames recorded.
func (rm *Room) Frames() int64 { return rm.frames.Load() }

// RecordDropped is the number of RTP packets relayed to the viewers but
// dropped from the recording because it fell behind; the recording itself
// says so in "screen.record.dropped" events.
func (rm *Room) RecordDropped() int64 { return rm.recordDropped.Load() }

// Sharing reports whether a publisher is connected.
func (rm *Room) Sharing() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.pub != nil
}

// shutdown closes every PeerConnection of an ended room and waits for its
// goroutines.
func (rm *Room) shutdown() {
	rm.mu.Lock()
	rm.closed = true
	pub := rm.pub
	rm.pub = nil
	for m := range rm.members {
		m.cancel()
	}
	rm.mu.Unlock()
	if pub != nil {
		pub.pc.Close()
	}
	rm.wg.Wait()
}

// Serve runs one participant's connection until it closes or the room
// ends, and closes conn and the participant's PeerConnection before it
// returns. name is shown to the others in chat.
func (rm *Room) Serve(conn Conn, role Role, name string) error {
	ctx, cancel := context.WithCancel(rm.ctx)
	defer cancel()
	m := &member{name: name, role: role, out: make(chan Message, memberQueue), cancel: cancel, chatTokens: chatBurst, chatAt: time.Now()}
	rm.mu.Lock()
	if rm.closed {
		rm.mu.Unlock()
		conn.WriteJSON(Message{Type: "ended", Reason: "session ended"})
		conn.Close()
		return ErrClosed
	}
	if err := rm.admitLocked(name); err != nil {
		rm.mu.Unlock()
		conn.WriteJSON(Message{Type: "error", Text: err.Error()})
		conn.Close()
		return err
	}
	rm.members[m] = struct{}{}
	sharing := rm.pub != nil
	// Queued before the lock is let go, so that no chat message broadcast
	// from now on can overtake them: m.out is new and empty.
	chat := rm.opt.Chat
	m.send(Message{Type: "hello", Role: role, Sharing: &sharing, ICEServers: rm.relay.cfg.ICEServers, Chat: &chat, Room: rm.nonce})
	if h := rm.historyForLocked(role, name); len(h) > 0 {
		m.send(Message{Type: "history", History: h})
	}
	rm.mu.Unlock()
	defer func() {
		rm.mu.Lock()
		delete(rm.members, m)
		rm.mu.Unlock()
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writer: the only goroutine that writes to conn
		defer wg.Done()
		defer conn.Close()
		for {
			select {
			case <-ctx.Done():
				// A relay closing is the gateway stopping, not the session
				// ending: the socket just closes, and the pages reconnect
				// to the gateway that starts again, where the session goes
				// on (or, if it ended meanwhile, are told so then).
				if rm.ctx.Err() != nil && !rm.relay.isClosed() {
					conn.WriteJSON(Message{Type: "ended", Reason: "session ended"})
				}
				return
			case msg := <-m.out:
				if conn.WriteJSON(msg) != nil {
					cancel()
					return
				}
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	if rm.rec != nil {
		rm.rec.Event("participant.joined", map[string]string{"name": name, "role": string(role)})
		defer rm.rec.Event("participant.left", map[string]string{"name": name, "role": string(role)})
	}

	var pc *webrtc.PeerConnection
	var sender *webrtc.RTPSender
	var pub *publisher
	defer func() {
		if pub != nil {
			rm.unpublish(pub)
		} else if pc != nil {
			rm.dropSender(sender)
			pc.Close()
		}
	}()
	if role == Viewer {
		var err error
		if pc, sender, err = rm.viewer(ctx, m); err != nil {
			return err
		}
	}
	candidates := 0 // trickled into the current PeerConnection
	for {
		var msg Message
		if err := conn.ReadJSON(&msg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("rtc: bad message: %w", err)
			}
			return nil // the page went away
		}
		switch {
		case msg.Type == "chat":
			rm.chat(m, msg.Text)
		case msg.Type == "offer" && role == Publisher:
			if pub != nil {
				rm.unpublish(pub)
			}
			candidates = 0
			var err error
			if pub, err = rm.publish(ctx, m, msg.SDP); err != nil {
				m.send(Message{Type: "error", Text: err.Error()})
				pub = nil
			}
		case msg.Type == "stop" && role == Publisher:
			if pub != nil {
				rm.unpublish(pub)
				pub = nil
			}
		case msg.Type == "candidate":
			target := pc
			if role == Publisher && pub != nil {
				target = pub.pc
			}
			switch {
			case target == nil || msg.Candidate == nil:
				m.send(Message{Type: "error", Text: "a candidate before an offer"})
			case candidates >= maxCandidates:
				m.send(Message{Type: "error", Text: fmt.Sprintf("more than %d candidates", maxCandidates)})
			default:
				candidates++
				if err := target.AddICECandidate(*msg.Candidate); err != nil {
					m.send(Message{Type: "error", Text: "bad candidate"})
				}
			}
		case msg.Type == "answer" && role == Viewer:
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: msg.SDP}); err != nil {
				m.send(Message{Type: "error", Text: "bad answer"})
				continue
			}
			rm.keyframe(true)
		default:
			m.send(Message{Type: "error", Text: "unexpected message " + msg.Type})
		}
	}
}

// ErrRoomFull refuses a connection past maxMembers or maxPerName.
var ErrRoomFull = errors.New("rtc: too many connections to this screen share")

// admitLocked refuses a new participant named name if the room is full.
func (rm *Room) admitLocked(name string) error {
	if len(rm.members) >= maxMembers {
		return fmt.Errorf("%w (at most %d)", ErrRoomFull, maxMembers)
	}
	n := 0
	for m := range rm.members {
		if m.name == name {
			n++
		}
	}
	if n >= maxPerName {
		return fmt.Errorf("%w (at most %d for %s)", ErrRoomFull, maxPerName, name)
	}
	return nil
}

// chatAllowed takes one of m's chat tokens, if it has one.
func (m *member) chatAllowed(now time.Time) bool {
	m.chatTokens = min(chatBurst, m.chatTokens+now.Sub(m.chatAt).Seconds()/chatEvery.Seconds())
	m.chatAt = now
	if m.chatTokens < 1 {
		return false
	}
	m.chatTokens--
	return true
}

// send queues msg; a participant too slow to take it is dropped.
func (m *member) send(msg Message) {
	select {
	case m.out <- msg:
	default:
		m.cancel()
	}
}

func (rm *Room) broadcast(msg Message) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for m := range rm.members {
		m.send(msg)
	}
}

// chat records a chat message and passes it to everyone. A message the
// recording refuses is not passed on: nothing goes unrecorded.
func (rm *Room) chat(from *member, text string) {
	if !rm.opt.Chat {
		from.send(Message{Type: "error", Text: "chat is not part of this session"})
		return
	}
	text = strings.TrimSpace(text)
	if text == "" || !utf8.ValidString(text) {
		return
	}
	if utf8.RuneCountInString(text) > MaxChat {
		from.send(Message{Type: "error", Text: fmt.Sprintf("chat messages are limited to %d characters", MaxChat)})
		return
	}
	if !from.chatAllowed(time.Now()) {
		from.send(Message{Type: "error", Text: "too many chat messages; wait a moment"})
		return
	}
	rm.chatMu.Lock()
	defer rm.chatMu.Unlock()
	if rm.rec != nil {
		if err := rm.rec.Chat(from.name, text); err != nil {
			rm.relay.log.Warn("recording chat", "room", rm.id, "err", err)
			from.send(Message{Type: "error", Text: "the message could not be recorded, so it was not sent"})
			return
		}
	}
	now := time.Now().UTC()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.chatSeq++
	msg := Message{Type: "chat", From: from.name, Role: from.role, Text: text, Time: &now, Seq: rm.chatSeq}
	rm.keepChatLocked(msg)
	for m := range rm.members {
		m.send(msg)
	}
}

// historyForLocked returns a copy of the chat history that a participant
// joining as role and name may see: all of it for the customer and the
// session's agent, who are its parties; for anyone else, what was said
// since they first joined (see RoomOptions.Agent).
func (rm *Room) historyForLocked(role Role, name string) []Message {
	if role == Publisher || (rm.opt.Agent != "" && name == rm.opt.Agent) {
		return slices.Clone(rm.history)
	}
	since, ok := rm.joined[name]
	if !ok {
		if rm.joined == nil {
			rm.joined = map[string]uint64{}
		}
		if len(rm.joined) < chatJoiners {
			rm.joined[name] = rm.chatSeq
		}
		return nil
	}
	i, _ := slices.BinarySearchFunc(rm.history, since+1, func(m Message, seq uint64) int {
		return cmp.Compare(m.Seq, seq)
	})
	return slices.Clone(rm.history[i:])
}

// keepChatLocked adds msg to the room's history, dropping the oldest
// messages past chatHistory or chatHistoryBytes.
func (rm *Room) keepChatLocked(msg Message) {
	rm.history = append(rm.history, msg)
	rm.histLen += len(msg.Text)
	drop := 0
	for len(rm.history)-drop > chatHistory || rm.histLen > chatHistoryBytes {
		rm.histLen -= len(rm.history[drop].Text)
		drop++
	}
	if drop > 0 {
		// Copied down rather than resliced, so that the array does not
		// keep growing at the front's expense.
		rm.history = append(rm.history[:0], rm.history[drop:]...)
	}
}

// localDescription sets d and waits for ICE gathering, so that one message
// carries every candidate.
func localDescription(ctx context.Context, pc *webrtc.PeerConnection, d webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return "", err
	}
	t := time.NewTimer(gatherWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// useCodec returns the room's outgoing track for a publisher of codec c.
// When c is not the codec of the track the viewers have, it makes a track
// of c and switches every viewer's sender to it (the viewers negotiated
// every codec of videoCodecs they can decode); a viewer that cannot take it
// is logged and left without video.
func (rm *Room) useCodec(c webrtc.RTPCodecCapability) (*webrtc.TrackLocalStaticRTP, error) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	cur := rm.video.Codec()
	if strings.EqualFold(cur.MimeType, c.MimeType) && cur.SDPFmtpLine == c.SDPFmtpLine {
		return rm.video, nil
	}
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: c.MimeType, ClockRate: c.ClockRate, SDPFmtpLine: c.SDPFmtpLine}, "screen", "supportgate-"+rm.id)
	if err != nil {
		return nil, err
	}
	rm.video = video
	for s := range rm.senders {
		if err := s.ReplaceTrack(video); err != nil {
			rm.relay.log.Warn("screen share: a viewer cannot take the publisher's codec", "room", rm.id, "codec", c.MimeType, "err", err)
		}
	}
	return video, nil
}

// viewer builds a viewer's PeerConnection and sends it the offer. The
// sender is the room's until the caller passes it to dropSender.
func (rm *Room) viewer(ctx context.Context, m *member) (*webrtc.PeerConnection, *webrtc.RTPSender, error) {
	pc, err := rm.relay.newPC(Viewer)
	if err != nil {
		return nil, nil, fmt.Errorf("rtc: %w", err)
	}
	rm.mu.Lock()
	sender, err := pc.AddTrack(rm.video)
	if err == nil {
		rm.senders[sender] = struct{}{}
	}
	rm.mu.Unlock()
	if err == nil {
		err = rm.goLocked(func() { rm.readRTCP(sender) })
	}
	if err != nil {
		rm.dropSender(sender)
		pc.Close()
		return nil, nil, fmt.Errorf("rtc: %w", err)
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			m.cancel() // the page reconnects with a new socket
		}
	})
	offer, err := pc.CreateOffer(nil)
	var sdp string
	if err == nil {
		sdp, err = localDescription(ctx, pc, offer)
	}
	if err != nil {
		rm.dropSender(sender)
		pc.Close()
		return nil, nil, fmt.Errorf("rtc: offer: %w", err)
	}
	m.send(Message{Type: "offer", SDP: sdp})
	return pc, sender, nil
}

// dropSender forgets a viewer's sender; nil is ignored.
func (rm *Room) dropSender(s *webrtc.RTPSender) {
	if s == nil {
		return
	}
	rm.mu.Lock()
	delete(rm.senders, s)
	rm.mu.Unlock()
}

// goLocked runs fn in a goroutine the room waits for, unless it has ended.
func (rm *Room) goLocked(fn func()) error {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.closed {
		return ErrClosed
	}
	rm.wg.Add(1)
	go func() {
		defer rm.wg.Done()
		fn()
	}()
	return nil
}

// readRTCP reads a viewer's RTCP (which the interceptors need) and turns
// its keyframe requests into requests to the publisher.
func (rm *Room) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				rm.keyframe(false)
			}
		}
	}
}

// keyframe asks the publisher for a keyframe; force skips the rate limit
// (a viewer joined).
func (rm *Room) keyframe(force bool) {
	rm.mu.Lock()
	pub := rm.pub
	now := time.Now()
	if pub == nil || (!force && now.Sub(rm.lastPLI) < pliInterval) {
		rm.mu.Unlock()
		return
	}
	rm.lastPLI = now
	rm.mu.Unlock()
	if ssrc := pub.ssrc.Load(); ssrc != 0 {
		pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
}
