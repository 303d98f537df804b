package rtc

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const (
	// transportCCURI names the transport-wide sequence number header
	// extension (draft-holmer-rmcat-transport-wide-cc-extensions-01).
	transportCCURI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
	// twccInterval is how often feedback is sent, as pion and browsers do.
	twccInterval = 100 * time.Millisecond
)

// configureTWCC offers transport-wide congestion control to the browsers
// and sends them its feedback (webrtc.ConfigureTWCCSender, with the
// relay's own interceptor).
func configureTWCC(me *webrtc.MediaEngine, ir *interceptor.Registry) error {
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: transportCCURI}, kind); err != nil {
			return err
		}
	}
	ir.Add(twccFeedbackFactory{})
	return nil
}

// twccFeedback is an interceptor that tells the publisher when each of its
// packets arrived (RTCP transport-wide congestion control feedback, every
// twccInterval), which the browser's bandwidth estimate needs to raise the
// share's bit rate. It does what pion's twcc.SenderInterceptor does, with
// pion's twcc.Recorder, but notes each arrival on the goroutine that reads
// the track, under a mutex: pion's handed every packet over an unbuffered
// channel to a goroutine of its own, one more goroutine wake-up per packet
// received, on a path that already has three.
//
// Its goroutine (one per PeerConnection, started by BindRTCPWriter) waits
// for the first packet before it starts its ticker, so viewers'
// PeerConnections, which receive no media, never tick. Close stops it and
// waits for it.
type twccFeedback struct {
	interceptor.NoOp
	start time.Time

	mu  sync.Mutex // guards rec
	rec *twcc.Recorder

	first     chan struct{} // closed at the first packet noted
	firstOnce sync.Once
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// twccFeedbackFactory makes a twccFeedback per PeerConnection.
type twccFeedbackFactory struct{}

func (twccFeedbackFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &twccFeedback{
		start: time.Now(),
		rec:   twcc.NewRecorder(rand.Uint32()),
		first: make(chan struct{}),
		done:  make(chan struct{}),
	}, nil
}

var _ interceptor.Factory = twccFeedbackFactory{}

// BindRemoteStream notes the arrival of each packet that carries a
// transport-wide sequence number.
func (t *twccFeedback) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == transportCCURI {
			id = uint8(e.ID)
			break
		}
	}
	if id == 0 { // not negotiated: 0 is no valid extension ID
		return r
	}
	ssrc := info.SSRC
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		h, err := a.GetRTPHeader(b[:n])
		if err != nil {
			return 0, nil, err
		}
		if ext := h.GetExtension(id); ext != nil {
			var tcc rtp.TransportCCExtension
			if err := tcc.Unmarshal(ext); err != nil {
				return 0, nil, err
			}
			at := time.Since(t.start).Microseconds()
			t.mu.Lock()
			t.rec.Record(ssrc, tcc.TransportSequence, at)
			t.mu.Unlock()
			t.firstOnce.Do(func() { close(t.first) })
		}
		return n, a, nil
	})
}

// BindRTCPWriter starts the goroutine that sends the feedback.
func (t *twccFeedback) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	select {
	case <-t.done:
		return w
	default:
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.send(w)
	}()
	return w
}

func (t *twccFeedback) send(w interceptor.RTCPWriter) {
	select {
	case <-t.first:
	case <-t.done:
		return
	}
	tick := time.NewTicker(twccInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		pkts := t.rec.BuildFeedbackPacket()
		t.mu.Unlock()
		if len(pkts) > 0 {
			w.Write(pkts, nil) // a closed connection ends us through Close
		}
	}
}

// Close stops the feedback and waits for its goroutine.
func (t *twccFeedback) Close() error {
	t.closeOnce.Do(func() { close(t.done) })
	t.wg.Wait()
	return nil
}
