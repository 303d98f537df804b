// Package rtc relays a customer's screen share from the browser to the
// agent and supervisors watching, through the gateway, and hands the video
// frames (VP8 or H.264) and the chat to the session's recording.
//
// One Room exists per session. The customer's browser publishes one video
// track (the gateway answers its offer); every viewer gets a PeerConnection
// on which the gateway offers the room's single outgoing track, so the
// relay forwards each RTP packet once per viewer without re-encoding. That
// track has the publisher's codec: a publisher that sends another codec
// than the last switches every viewer's sender to a track of its codec,
// which each viewer negotiated with its offer.
// Signaling and chat run over a message connection (a websocket in the
// gateway) that Room.Serve owns for its lifetime. When the room's context
// (the session context) ends, every PeerConnection and connection of the
// room is closed.
package rtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/webrtc/v4"
)

// Config configures a Relay. The zero value gathers host candidates on all
// interfaces on ephemeral UDP ports.
type Config struct {
	// UDPPortMin and UDPPortMax bound the UDP ports ICE uses (firewall
	// rules name this range); both zero means ephemeral ports.
	UDPPortMin, UDPPortMax uint16
	// TCP, if set, is a listener for ICE-TCP (passive candidates), for
	// customers whose networks block UDP. The caller opens and closes it.
	TCP net.Listener
	// ICEServers are STUN and TURN servers (for example coturn, see the
	// README) handed to the browsers. The gateway does not use them
	// itself: it is reachable at its own addresses (PublicIPs, TCP), and a
	// browser behind a strict network reaches those through its TURN
	// relay. Gathering through them would cost a TURN allocation per
	// PeerConnection and, with the TURN server down, hold every answer
	// until the allocation timed out (5 s).
	ICEServers []webrtc.ICEServer
	// PublicIPs, if set, replace the host candidates' addresses (the
	// gateway behind a 1:1 NAT).
	PublicIPs []string
	// Loopback gathers only loopback candidates (tests, benchmarks).
	Loopback bool
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
}

// Relay builds PeerConnections for rooms. It does not listen on its own
// except for the UDP sockets ICE opens per PeerConnection.
type Relay struct {
	pubAPI  *webrtc.API // for publishers' PeerConnections
	viewAPI *webrtc.API // for viewers'
	cfg     Config
	log     *slog.Logger

	mu      sync.Mutex // guards rooms, closed, retired
	rooms   map[string]*Room
	closed  bool
	retired Stats          // the counts of rooms that ended
	wg      sync.WaitGroup // room goroutines
}

// Stats are counts over every room of a relay since it started.
type Stats struct {
	Rooms         int   // live rooms (not a count since the start)
	Packets       int64 // RTP packets received from publishers
	Frames        int64 // video frames recorded
	RecordDropped int64 // packets relayed but dropped from the recording
}

// ErrClosed is returned for a room of a closed relay or an ended session.
var ErrClosed = errors.New("rtc: relay closed")

// New checks cfg and returns a Relay.
func New(cfg Config) (*Relay, error) {
	if cfg.UDPPortMin > cfg.UDPPortMax {
		return nil, fmt.Errorf("rtc: UDP port range %d-%d is empty", cfg.UDPPortMin, cfg.UDPPortMax)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var se webrtc.SettingEngine
	if cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, fmt.Errorf("rtc: %w", err)
		}
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	if cfg.Loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	if cfg.TCP != nil {
		se.SetICETCPMux(webrtc.NewICETCPMux(nil, cfg.TCP, 8))
	}
	// The gateway's ICE-TCP is passive (the browsers dial it). Active TCP
	// would have the gateway dial whatever address a page names in a
	// candidate, from inside its network.
	se.DisableActiveTCP(true)
	// A viewer or publisher that vanishes without closing is dropped soon.
	se.SetICETimeouts(3*time.Second, 6*time.Second, time.Second)

	pubAPI, err := newAPI(se, Publisher)
	if err != nil {
		return nil, fmt.Errorf("rtc: %w", err)
	}
	viewAPI, err := newAPI(se, Viewer)
	if err != nil {
		return nil, fmt.Errorf("rtc: %w", err)
	}
	return &Relay{pubAPI: pubAPI, viewAPI: viewAPI, cfg: cfg, log: cfg.Logger, rooms: map[string]*Room{}}, nil
}

// videoCodecs are the codecs the relay takes and forwards, in the order it
// prefers them: VP8, then H.264 in packetization mode 1 (constrained
// baseline, baseline, main), which a browser gets to send when it offers
// no VP8. VP8 comes first because the review player shows only VP8 (WebM);
// H.264 recordings export as IVF. Payload types are the relay's own
// offers'; answers use the browser's.
var videoCodecs = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: videoFeedback}, PayloadType: 96},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"}, PayloadType: 104},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"}, PayloadType: 106},
}

// videoFeedback is the RTCP feedback the relay negotiates for video:
// receiver-estimated bandwidth (REMB), keyframe requests (FIR, PLI) and
// NACK. Transport-wide congestion control feedback is added for
// publishers (configureTWCC). It is part of each codec in videoCodecs, so
// that the preferences of an answer (preferCodecs) keep it: pion answers
// with the feedback common to a preference and its media engine.
var videoFeedback = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}

// depacketizerFor returns the depacketizer of a codec the relay took, nil
// for another.
func depacketizerFor(c webrtc.RTPCodecCapability) depacketizer {
	switch {
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8):
		return vp8Payload{}
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeH264):
		return h264Payload{}
	}
	return nil
}

// newAPI is the pion API for the PeerConnections of one role: the video
// codecs and the interceptors that role needs.
func newAPI(se webrtc.SettingEngine, role Role) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	for _, c := range videoCodecs {
		c.RTCPFeedback = slices.Clone(c.RTCPFeedback) // the media engine appends to it
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	ir, err := interceptors(me, role)
	if err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
}

// interceptors are pion's defaults (webrtc.RegisterDefaultInterceptors)
// except the stats interceptor, which only feeds PeerConnection.GetStats:
// the relay never calls it, and it cloned every packet's header both ways.
// What browsers rely on stays: NACK (the gateway asks the publisher for
// lost packets with pion's generator, and resends to viewers what they
// lost with its own nackResponder, which does not allocate per packet),
// RTCP sender and receiver reports, transport-wide congestion control
// feedback to the publisher (the relay's own twccFeedback, which saves a
// goroutine wake-up per packet), and the simulcast header extensions.
// Viewers are not offered transport-wide congestion control: the relay
// forwards at the publisher's rate and has no use for their feedback,
// which each would send ten times a second (a browser viewer falls back
// to REMB). Keyframe requests (PLI) are the room's own (Room.keyframe).
func interceptors(me *webrtc.MediaEngine, role Role) (*interceptor.Registry, error) {
	ir := &interceptor.Registry{}
	// webrtc.ConfigureNack, with the relay's own responder, and each half
	// only where it has work: the generator's timer would tick ten times a
	// second on a viewer's PeerConnection, which receives no media.
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	if role == Viewer {
		ir.Add(nackResponderFactory{})
	} else {
		ir.Add(headerCacheFactory{}) // first: it parses each header for the rest
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			return nil, err
		}
		ir.Add(gen)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, err
	}
	if role == Viewer {
		return ir, nil
	}
	if err := configureTWCC(me, ir); err != nil {
		return nil, err
	}
	return ir, nil
}

// ICEServers are the servers pages should configure, as the relay was
// given them.
func (r *Relay) ICEServers() []webrtc.ICEServer { return r.cfg.ICEServers }

func (r *Relay) newPC(role Role) (*webrtc.PeerConnection, error) {
	api := r.viewAPI
	if role == Publisher {
		api = r.pubAPI
	}
	return api.NewPeerConnection(webrtc.Configuration{}) // no ICE servers: see Config.ICEServers
}

// Room returns the session's room, creating it with rec as its recording
// sink. The room ends, closing everything in it, when ctx (the session
// context) is done or the relay closes. rec may be nil (nothing recorded).
func (r *Relay) Room(ctx context.Context, id string, rec Recorder, opt RoomOptions) (*Room, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || ctx.Err() != nil {
		return nil, ErrClosed
	}
	if rm := r.rooms[id]; rm != nil {
		return rm, nil
	}
	rm, err := newRoom(r, ctx, id, rec, opt)
	if err != nil {
		return nil, err
	}
	r.rooms[id] = rm
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-rm.ctx.Done()
		rm.shutdown()
		r.mu.Lock()
		if r.rooms[id] == rm {
			delete(r.rooms, id)
		}
		r.retired.Packets += rm.Packets()
		r.retired.Frames += rm.Frames()
		r.retired.RecordDropped += rm.RecordDropped()
		r.mu.Unlock()
	}()
	return rm, nil
}

// Rooms is the number of live rooms.
func (r *Relay) Rooms() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rooms)
}

// Stats returns the relay's counts: the live rooms' and those of rooms
// that ended. Reading them costs the forwarding path nothing.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.retired
	st.Rooms = len(r.rooms)
	for _, rm := range r.rooms {
		st.Packets += rm.Packets()
		st.Frames += rm.Frames()
		st.RecordDropped += rm.RecordDropped()
	}
	return st
}

// isClosed reports whether Close has begun.
func (r *Relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close ends every room and waits until their PeerConnections are closed.
// Participants are not told the session ended: Close is the gateway
// stopping, and their sessions go on when it starts again. It is
// idempotent.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for _, rm := range r.rooms {
		rm.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}
