// Package rtctest has synthetic peers for testing and benchmarking the
// relay without a browser: an in-memory message pipe standing in for the
// websocket, a pion publisher that sends synthetic VP8 over RTP at a set
// bit rate (or given H.264 access units), and a pion viewer that counts
// what arrives and how late.
package rtctest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"supportgate/gateway/rtc"
)

// Pipe is one end of an in-memory message connection (rtc.Conn).
type Pipe struct {
	in, out chan []byte
	done    chan struct{}
	once    *sync.Once
}

// NewPipe returns two connected ends.
func NewPipe() (*Pipe, *Pipe) {
	a, b := make(chan []byte, 64), make(chan []byte, 64)
	done, once := make(chan struct{}), &sync.Once{}
	return &Pipe{in: a, out: b, done: done, once: once}, &Pipe{in: b, out: a, done: done, once: once}
}

var errClosed = errors.New("rtctest: pipe closed")

// ReadJSON reads the next message; messages sent before Close are still
// read.
func (p *Pipe) ReadJSON(v any) error {
	select {
	case b := <-p.in:
		return json.Unmarshal(b, v)
	default:
	}
	select {
	case b := <-p.in:
		return json.Unmarshal(b, v)
	case <-p.done:
		return errClosed
	}
}

// WriteJSON sends a message.
func (p *Pipe) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	select {
	case p.out <- b:
		return nil
	case <-p.done:
		return errClosed
	}
}

// Close closes both ends.
func (p *Pipe) Close() error { p.once.Do(func() { close(p.done) }); return nil }

// Done is closed when either end closes.
func (p *Pipe) Done() <-chan struct{} { return p.done }

// NewAPI is a pion API for synthetic peers: VP8, default interceptors and
// transport-wide sequence numbers on the packets sent, loopback host
// candidates.
func NewAPI() *webrtc.API { return newAPI(nil, vp8Codec, h264Codec) }

// NewH264API is NewAPI for a browser that offers H.264 and no VP8.
func NewH264API() *webrtc.API { return newAPI(nil, h264Codec) }

// NewH264FirstAPI is NewAPI for a browser that offers H.264 before VP8, as
// Safari does.
func NewH264FirstAPI() *webrtc.API { return newAPI(nil, h264Codec, vp8Codec) }

var (
	videoFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	vp8Codec      = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback},
		PayloadType:        96,
	}
	h264Codec = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		PayloadType: 102,
	}
)

// Loss drops chosen RTP packets the first time a viewer receives them,
// before its NACK generator sees them, as a lossy network would: the
// viewer asks for them again, and a copy resent gets through. For a
// publisher (NewLossySenderAPI) it drops them the first time they are
// sent, after its NACK responder kept them.
type Loss struct {
	drop func(seq uint16) bool
	send bool // drop on the way out, not in

	// Dropped counts packets dropped, Recovered their copies that arrived.
	Dropped, Recovered atomic.Int64

	mu   sync.Mutex // guards lost
	lost map[uint16]bool
}

// NewLossyAPI is NewAPI for a viewer that loses the packets drop chooses.
// The packets are dropped after SRTP has decrypted them (the interceptors
// see nothing sooner), so SRTP's replay protection is off: it would
// refuse the copy resent, which a packet lost on the way is not.
func NewLossyAPI(drop func(seq uint16) bool) (*webrtc.API, *Loss) {
	l := &Loss{drop: drop, lost: map[uint16]bool{}}
	return newAPI(l, vp8Codec, h264Codec), l
}

// NewLossySenderAPI is NewAPI for a publisher whose network loses the
// packets drop chooses the first time they are sent: the relay's NACK
// generator must ask for them, and the copy the publisher resends gets
// through.
func NewLossySenderAPI(drop func(seq uint16) bool) (*webrtc.API, *Loss) {
	l := &Loss{drop: drop, send: true, lost: map[uint16]bool{}}
	return newAPI(l, vp8Codec, h264Codec), l
}

// lose reports whether the packet seq is lost this time: the first time
// drop chooses it. A copy sent again is counted as recovered.
func (l *Loss) lose(seq uint16) bool {
	if !l.drop(seq) {
		return false
	}
	l.mu.Lock()
	again := l.lost[seq]
	l.lost[seq] = true
	l.mu.Unlock()
	if again {
		l.Recovered.Add(1)
		return false
	}
	l.Dropped.Add(1)
	return true
}

// NewInterceptor makes Loss an interceptor.Factory.
func (l *Loss) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &lossInterceptor{l: l}, nil
}

type lossInterceptor struct {
	interceptor.NoOp
	l *Loss
}

func (li *lossInterceptor) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	l := li.l
	if l.send {
		return r
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, err := r.Read(b, a)
			if err != nil || n < 4 || !l.lose(binary.BigEndian.Uint16(b[2:4])) {
				return n, attr, err
			}
		}
	})
}

// BindLocalStream drops a publisher's chosen packets on their first way
// out. It is the innermost interceptor, so the NACK responder has kept
// them and resends them through it.
func (li *lossInterceptor) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	l := li.l
	if !l.send {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if l.lose(h.SequenceNumber) {
			return h.MarshalSize() + len(payload), nil // gone on the way
		}
		return w.Write(h, payload, a)
	})
}

// newAPI builds the API with codecs; first, if set, is the innermost
// interceptor.
func newAPI(first interceptor.Factory, codecs ...webrtc.RTPCodecParameters) *webrtc.API {
	var se webrtc.SettingEngine
	se.DisableSRTPReplayProtection(first != nil)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	me := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			panic(err)
		}
	}
	ir := &interceptor.Registry{}
	if first != nil {
		ir.Add(first)
	}
	// pion's default interceptors but its stats interceptor, which only
	// feeds GetStats (a browser keeps its statistics too, but they do not
	// change what goes on the wire) and costs the synthetic peers a copy
	// of every packet's header: the peers share two cores with the relay.
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		panic(err)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		panic(err)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		panic(err)
	}
	if err := webrtc.ConfigureTWCCSender(me, ir); err != nil {
		panic(err)
	}
	// Like a browser, number every packet sent for transport-wide
	// congestion control, so the relay sends feedback as it would to one.
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
		panic(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
}

// Message reads messages from c until one of type typ arrives; others go
// to other (which may be nil).
func Message(c rtc.Conn, typ string, other func(rtc.Message)) (rtc.Message, error) {
	for {
		var m rtc.Message
		if err := c.ReadJSON(&m); err != nil {
			return m, err
		}
		if m.Type == typ {
			return m, nil
		}
		if m.Type == "error" {
			return m, fmt.Errorf("rtctest: relay error: %s", m.Text)
		}
		if other != nil {
			other(m)
		}
	}
}

// Gather sets d as pc's local description, waits for ICE gathering to
// end and returns the description with every candidate.
func Gather(pc *webrtc.PeerConnection, d webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return "", err
	}
	<-done
	return pc.LocalDescription().SDP, nil
}

// trickler sends a PeerConnection's candidates as "candidate" messages
// once start is called (after the offer), holding back those gathered
// before.
type trickler struct {
	c       rtc.Conn
	mu      sync.Mutex
	started bool
	held    []webrtc.ICECandidateInit
}

func newTrickler(pc *webrtc.PeerConnection, c rtc.Conn) *trickler {
	t := &trickler{c: c}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.started {
			t.held = append(t.held, init)
			return
		}
		t.c.WriteJSON(rtc.Message{Type: "candidate", Candidate: &init})
	})
	return t
}

func (t *trickler) start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.started = true
	for i := range t.held {
		t.c.WriteJSON(rtc.Message{Type: "candidate", Candidate: &t.held[i]})
	}
	t.held = nil
}

// withoutCandidates removes the candidate lines from sdp, as a page's
// offer made before gathering has none.
func withoutCandidates(sdp string) string {
	var b strings.Builder
	for line := range strings.Lines(sdp) {
		if !strings.HasPrefix(line, "a=candidate:") && !strings.HasPrefix(line, "a=end-of-candidates") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// Publisher is a synthetic screen sharer.
type Publisher struct {
	PC     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP    // VP8, WriteFrame
	sample *webrtc.TrackLocalStaticSample // H.264, WriteSample

	payload [1 + MTU + 8]byte // WriteFrame's packet payload
	pkt     rtp.Packet
	seq     uint16
	ts      uint32
	// Keyframes counts keyframe requests (PLI, FIR) received.
	Keyframes atomic.Int64
	// Feedback counts transport-wide congestion control feedback received.
	Feedback atomic.Int64
	// ReportsWithLSR counts receiver report blocks that name a sender
	// report of the publisher's (LSR), from which it learns the round
	// trip time.
	ReportsWithLSR atomic.Int64
	wantKey        atomic.Bool
	wg             sync.WaitGroup
}

// Publish connects a publisher of VP8 over c (after the relay's hello).
func Publish(api *webrtc.API, c rtc.Conn) (*Publisher, error) {
	return PublishConfig(api, c, webrtc.Configuration{})
}

// PublishConfig is Publish with the PeerConnection configured by cfg:
// the ICE servers of the relay's hello, say, and a transport policy.
func PublishConfig(api *webrtc.API, c rtc.Conn, cfg webrtc.Configuration) (*Publisher, error) {
	p := &Publisher{}
	p.track, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "synthetic")
	if err := p.connect(api, c, p.track, cfg, false); err != nil {
		return nil, err
	}
	return p, nil
}

// PublishTrickle is Publish as the pages do it: the offer goes at once,
// without candidates, and each candidate follows in a "candidate" message
// as it is gathered.
func PublishTrickle(api *webrtc.API, c rtc.Conn) (*Publisher, error) {
	p := &Publisher{}
	p.track, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "synthetic")
	if err := p.connect(api, c, p.track, webrtc.Configuration{}, true); err != nil {
		return nil, err
	}
	return p, nil
}

// PublishH264 connects a publisher of H.264 (WriteSample) over c.
func PublishH264(api *webrtc.API, c rtc.Conn) (*Publisher, error) {
	p := &Publisher{}
	p.sample, _ = webrtc.NewTrackLocalStaticSample(h264Codec.RTPCodecCapability, "screen", "synthetic")
	if err := p.connect(api, c, p.sample, webrtc.Configuration{}, false); err != nil {
		return nil, err
	}
	return p, nil
}

// WriteSample sends one H.264 access unit (Annex B) lasting d, which pion
// packetizes (STAP-A, FU-A).
func (p *Publisher) WriteSample(au []byte, d time.Duration) error {
	return p.sample.WriteSample(media.Sample{Data: au, Duration: d})
}

func (p *Publisher) connect(api *webrtc.API, c rtc.Conn, track webrtc.TrackLocal, cfg webrtc.Configuration, trickle bool) error {
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return err
	}
	p.PC = pc
	sender, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		pc.Close()
		return err
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			pkts, _, err := sender.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, k := range pkts {
				switch k := k.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					p.Keyframes.Add(1)
					p.wantKey.Store(true)
				case *rtcp.TransportLayerCC:
					p.Feedback.Add(1)
				case *rtcp.ReceiverReport:
					for _, r := range k.Reports {
						if r.LastSenderReport != 0 {
							p.ReportsWithLSR.Add(1)
						}
					}
				}
			}
		}
	}()
	var t *trickler
	if trickle {
		t = newTrickler(pc, c)
	}
	offer, err := pc.CreateOffer(nil)
	var sdp string
	switch {
	case err == nil && trickle:
		if err = pc.SetLocalDescription(offer); err == nil {
			sdp = withoutCandidates(pc.LocalDescription().SDP)
		}
	case err == nil:
		sdp, err = Gather(pc, offer)
	}
	if err == nil {
		err = c.WriteJSON(rtc.Message{Type: "offer", SDP: sdp})
	}
	if err == nil && trickle {
		t.start()
	}
	var ans rtc.Message
	if err == nil {
		ans, err = Message(c, "answer", nil)
	}
	if err == nil {
		err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP})
	}
	if err != nil {
		p.Close()
		return err
	}
	return nil
}

// Close closes the PeerConnection and waits for the RTCP reader.
func (p *Publisher) Close() error {
	err := p.PC.Close()
	p.wg.Wait()
	return err
}

// FrameSize is the size of a synthetic frame for bitrate at fps.
func FrameSize(bitrate, fps int) int { return bitrate / 8 / fps }

// Frame returns a synthetic VP8 frame of n bytes: a keyframe carries a
// VP8 keyframe header (1280x720) so exporters find its size.
func Frame(n int, key bool) []byte {
	f := make([]byte, max(n, 16))
	if key {
		copy(f, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a})
		binary.LittleEndian.PutUint16(f[6:], 1280)
		binary.LittleEndian.PutUint16(f[8:], 720)
	} else {
		f[0] = 0x01
	}
	return f
}

// MTU is the RTP payload size the publisher packetizes to.
const MTU = 1200

// WriteFrame packetizes frame as VP8 RTP (one clock tick of 90 kHz / fps)
// with the send time in the last 8 bytes of every packet's payload, and
// returns the number of packets. A keyframe is sent instead when one was
// requested and key is false: frame is then rebuilt as a keyframe.
func (p *Publisher) WriteFrame(frame []byte, fps int) (int, error) {
	if p.wantKey.Swap(false) && frame[0]&1 != 0 {
		frame = Frame(len(frame), true)
	}
	n := 0
	for off := 0; off < len(frame); off += MTU {
		end := min(off+MTU, len(frame))
		// pion is done with the packet when WriteRTP returns (its NACK
		// responder keeps copies), so one payload buffer serves them all.
		payload := p.payload[:1+end-off+8]
		payload[0] = 0
		if off == 0 {
			payload[0] = 0x10 // S: start of partition
		}
		copy(payload[1:], frame[off:end])
		binary.BigEndian.PutUint64(payload[len(payload)-8:], uint64(time.Now().UnixNano()))
		p.seq++
		p.pkt = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: p.seq, Timestamp: p.ts, Marker: end == len(frame)}, Payload: payload}
		if err := p.track.WriteRTP(&p.pkt); err != nil {
			return n, err
		}
		n++
	}
	p.ts += uint32(90000 / fps)
	return n, nil
}

// Viewer is a synthetic agent console.
type Viewer struct {
	PC      *webrtc.PeerConnection
	Packets atomic.Int64
	Bytes   atomic.Int64
	Track   chan struct{} // closed when the track arrives

	mu   sync.Mutex // guards lat, mime
	lat  []time.Duration
	mime string
	wg   sync.WaitGroup
}

// View answers the relay's offer on c (reading past the hello).
func View(api *webrtc.API, c rtc.Conn, keepLatency bool) (*Viewer, error) {
	off, err := Message(c, "offer", nil)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &Viewer{PC: pc, Track: make(chan struct{})}
	var once sync.Once
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.mu.Lock()
		v.mime = t.Codec().MimeType
		v.mu.Unlock()
		once.Do(func() { close(v.Track) })
		buf := make([]byte, 1500)
		var pkt rtp.Packet
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if pkt.Unmarshal(buf[:n]) != nil || len(pkt.Payload) < 9 {
				continue
			}
			v.Packets.Add(1)
			v.Bytes.Add(int64(n))
			if keepLatency {
				sent := int64(binary.BigEndian.Uint64(pkt.Payload[len(pkt.Payload)-8:]))
				v.mu.Lock()
				v.lat = append(v.lat, now.Sub(time.Unix(0, sent)))
				v.mu.Unlock()
			}
		}
	})
	err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: off.SDP})
	var ans webrtc.SessionDescription
	if err == nil {
		ans, err = pc.CreateAnswer(nil)
	}
	var sdp string
	if err == nil {
		sdp, err = Gather(pc, ans)
	}
	if err == nil {
		err = c.WriteJSON(rtc.Message{Type: "answer", SDP: sdp})
	}
	if err != nil {
		pc.Close()
		return nil, err
	}
	return v, nil
}

// Latencies returns and clears the latencies measured so far.
func (v *Viewer) Latencies() []time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.lat
	v.lat = nil
	return l
}

// MimeType is the codec of the track the viewer got ("" before it).
func (v *Viewer) MimeType() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mime
}

// Close closes the PeerConnection.
func (v *Viewer) Close() error { return v.PC.Close() }

// Wait waits for ctx or for the viewer's track.
func (v *Viewer) Wait(ctx context.Context) error {
	select {
	case <-v.Track:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
