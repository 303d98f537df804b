package recorder

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// WebM element IDs (Matroska, https://www.matroska.org/technical/elements.html).
const (
	idEBML               = 0x1A45DFA3
	idEBMLVersion        = 0x4286
	idEBMLReadVersion    = 0x42F7
	idEBMLMaxIDLength    = 0x42F2
	idEBMLMaxSizeLength  = 0x42F3
	idDocType            = 0x4282
	idDocTypeVersion     = 0x4287
	idDocTypeReadVersion = 0x4285
	idSegment            = 0x18538067
	idSeekHead           = 0x114D9B74
	idSeek               = 0x4DBB
	idSeekID             = 0x53AB
	idSeekPosition       = 0x53AC
	idInfo               = 0x1549A966
	idTimestampScale     = 0x2AD7B1
	idMuxingApp          = 0x4D80
	idWritingApp         = 0x5741
	idDuration           = 0x4489
	idTracks             = 0x1654AE6B
	idTrackEntry         = 0xAE
	idTrackNumber        = 0xD7
	idTrackUID           = 0x73C5
	idTrackType          = 0x83
	idFlagLacing         = 0x9C
	idCodecID            = 0x86
	idVideo              = 0xE0
	idPixelWidth         = 0xB0
	idPixelHeight        = 0xBA
	idCues               = 0x1C53BB6B
	idCuePoint           = 0xBB
	idCueTime            = 0xB3
	idCueTrackPositions  = 0xB7
	idCueTrack           = 0xF7
	idCueClusterPosition = 0xF1
	idCluster            = 0x1F43B675
	idTimestamp          = 0xE7
	idSimpleBlock        = 0xA3
)

const (
	// webmTick is the WebM timestamp unit (TimestampScale): 1 ms.
	webmTick = time.Millisecond
	// webmClusterSpan bounds a cluster's duration in ticks. A block's
	// timestamp is an int16 relative to its cluster, so this must stay
	// below 32768; players also seek no finer than a cluster.
	webmClusterSpan = 5000
	// webmApp names the muxer in MuxingApp and WritingApp.
	webmApp = "supportgate"
	// SimpleBlock flags.
	webmFlagKey       = 0x80
	webmFlagInvisible = 0x08
)

// WebMStats counts what a WebMMuxer did with the frames it was given.
type WebMStats struct {
	Frames    int // frames in the file
	Keyframes int // of them key frames; each starts a cluster with a cue point
	Leading   int // delta frames before the first key frame, left out
	Rejected  int // frames Add refused as malformed VP8
}

// webmFrame is what the file layout needs to know of one frame.
type webmFrame struct {
	t         int64 // ticks since the first frame
	size      int
	key       bool
	invisible bool // VP8 show_frame clear (an alt-ref frame)
}

// WebMMuxer builds a WebM file with one VP8 video track from frames given
// in decoding order, for a browser's <video> element.
//
// Timestamps are made relative to the first key frame, which is written at
// 0; delta frames before it are left out (they cannot be decoded), and a
// timestamp that does not increase is moved to 1 ms after the previous one.
// A cluster starts at every key frame and at least every 5 seconds, and
// each key frame's cluster gets a cue point, so players seek to key frames.
//
// The muxer keeps a copy of every frame until WriteTo, which writes a
// complete file: every element has its size, Info has the Duration, and the
// Cues come before the clusters, so a browser has the seek index after its
// first range request. Memory therefore grows with the video; ExportWebM
// avoids that with two passes over the recording.
//
// A WebMMuxer is not safe for concurrent use.
type WebMMuxer struct {
	width, height int  // the track's pixel size; 0 until known
	keep          bool // keep frame bytes (false in ExportWebM's first pass)

	frames []webmFrame
	data   [][]byte      // frame bytes, when keep
	origin time.Duration // media time of the first frame
	stats  WebMStats
}

// NewWebMMuxer returns an empty muxer. The track's pixel size is width by
// height; if either is 0 it is taken from the first key frame's header.
// A VP8 stream may change size at a later key frame (a new screen share);
// players follow the bitstream, and the track keeps the first size.
func NewWebMMuxer(width, height int) *WebMMuxer {
	if width <= 0 || height <= 0 {
		width, height = 0, 0
	}
	return &WebMMuxer{width: width, height: height, keep: true}
}

// Add appends a VP8 frame with its media time ts; key says whether the
// sender marked it a key frame. Add copies frame.
//
// The frame's bytes are untrusted: Add checks the VP8 frame header (key
// frame start code and size, partition size within the frame) and that it
// agrees with key, and returns an error for a frame it cannot mux, counted
// in Stats but otherwise left out, so the caller may skip it and go on. It does
// not decode the frame, so a frame with a sound header but a corrupt body is
// written and left to the player's decoder.
func (m *WebMMuxer) Add(ts time.Duration, frame []byte, key bool) error {
	f, w, h, err := parseVP8Header(frame)
	if err == nil && f.key != key {
		if key {
			err = errors.New("marked as a key frame but its header is a delta frame's")
		} else {
			err = errors.New("marked as a delta frame but its header is a key frame's")
		}
	}
	if err != nil {
		m.stats.Rejected++
		return fmt.Errorf("recorder: webm: frame at %v: %w", ts, err)
	}
	if len(m.frames) == 0 {
		if !f.key {
			m.stats.Leading++
			return nil
		}
		m.origin = ts
		if m.width == 0 {
			m.width, m.height = w, h
		}
	} else {
		last := m.frames[len(m.frames)-1].t
		f.t = last + 1
		if ts >= m.origin {
			// The difference of two int64s fits in a uint64.
			if t := int64((uint64(ts) - uint64(m.origin)) / uint64(webmTick)); t > last {
				f.t = t
			}
		}
	}
	m.frames = append(m.frames, f)
	if m.keep {
		m.data = append(m.data, append([]byte(nil), frame...))
	}
	m.stats.Frames++
	if f.key {
		m.stats.Keyframes++
	}
	return nil
}

// Stats returns the muxer's counts so far.
func (m *WebMMuxer) Stats() WebMStats { return m.stats }

// Origin returns the media time of the first key frame, which the file
// shows at 0, and whether there is one. A player aligns the video with the
// recording's other records with it.
func (m *WebMMuxer) Origin() (time.Duration, bool) { return m.origin, len(m.frames) > 0 }

// WriteTo writes the WebM file of the frames added so far. It fails if no
// key frame was added. It does not change the muxer.
func (m *WebMMuxer) WriteTo(w io.Writer) (int64, error) {
	if len(m.frames) == 0 {
		return 0, errNoVP8
	}
	if !m.keep {
		return 0, errors.New("recorder: webm: muxer holds no frame data")
	}
	ww := newWebMWriter(w, m)
	for i, f := range m.data {
		if err := ww.frame(i, f); err != nil {
			return ww.cw.n, err
		}
	}
	err := ww.finish()
	return ww.cw.n, err
}

var errNoVP8 = errors.New("recorder: no VP8 key frame in the recording")

// parseVP8Header checks the uncompressed header of a VP8 frame (RFC 6386,
// section 9.1) and returns the frame's flags and, for a key frame, its
// size in pixels.
func parseVP8Header(p []byte) (f webmFrame, width, height int, err error) {
	if len(p) < 3 {
		return f, 0, 0, fmt.Errorf("too short for a VP8 frame: %d bytes", len(p))
	}
	if len(p) > MaxMediaFrame {
		return f, 0, 0, fmt.Errorf("frame of %d bytes exceeds %d", len(p), MaxMediaFrame)
	}
	tag := uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16
	f.key = tag&1 == 0
	f.invisible = tag>>4&1 == 0
	f.size = len(p)
	if v := tag >> 1 & 7; v > 3 {
		return f, 0, 0, fmt.Errorf("VP8 version %d is not 0 to 3", v)
	}
	hdr := 3
	if f.key {
		hdr = 10
		if len(p) < hdr {
			return f, 0, 0, fmt.Errorf("too short for a VP8 key frame: %d bytes", len(p))
		}
		var ok bool
		if width, height, ok = vp8KeyframeSize(p); !ok {
			return f, 0, 0, errors.New("VP8 key frame without its start code")
		}
		if width == 0 || height == 0 {
			return f, 0, 0, fmt.Errorf("VP8 key frame of %dx%d pixels", width, height)
		}
	}
	if part := int(tag >> 5); part > len(p)-hdr {
		return f, 0, 0, fmt.Errorf("VP8 first partition of %d bytes overruns the %d-byte frame", part, len(p))
	}
	return f, width, height, nil
}

// webmLayout is the sized plan of a file: everything before the first
// cluster, and where each cluster starts.
type webmLayout struct {
	head     []byte   // EBML header, Segment head, SeekHead, Info, Tracks, Cues
	starts   []int    // index of each cluster's first frame
	bodySize []uint64 // each cluster's data size
}

// layout sizes the file of m's frames.
func (m *WebMMuxer) layout() *webmLayout {
	l := &webmLayout{}
	var clusterT int64
	for i, f := range m.frames {
		if i == 0 || f.key || f.t-clusterT >= webmClusterSpan {
			clusterT = f.t
			l.starts = append(l.starts, i)
			l.bodySize = append(l.bodySize, uint64(1+1+ebmlUintLen(uint64(f.t))))
		}
		l.bodySize[len(l.bodySize)-1] += uint64(simpleBlockLen(f.size))
	}

	// Every file offset in the head is a fixed-width integer, so the
	// sizes do not depend on the offsets and one pass suffices.
	const posLen = 8
	cues := func(pos []uint64) []byte {
		var b []byte
		for c, i := range l.starts {
			if !m.frames[i].key {
				continue
			}
			var tp []byte
			tp = ebmlAppendUint(tp, idCueTrack, 1)
			tp = ebmlAppendUintN(tp, idCueClusterPosition, pos[c], posLen)
			var cp []byte
			cp = ebmlAppendUint(cp, idCueTime, uint64(m.frames[i].t))
			cp = ebmlAppendMaster(cp, idCueTrackPositions, tp)
			b = ebmlAppendMaster(b, idCuePoint, cp)
		}
		return ebmlAppendMaster(nil, idCues, b)
	}
	seekHead := func(info, tracks, cues uint64) []byte {
		var b []byte
		for _, s := range []struct {
			id  uint32
			pos uint64
		}{{idInfo, info}, {idTracks, tracks}, {idCues, cues}} {
			var e []byte
			e = ebmlAppendBinary(e, idSeekID, ebmlAppendID(nil, s.id))
			e = ebmlAppendUintN(e, idSeekPosition, s.pos, posLen)
			b = ebmlAppendMaster(b, idSeek, e)
		}
		return ebmlAppendMaster(nil, idSeekHead, b)
	}

	last := m.frames[len(m.frames)-1].t
	dur := float64(last + 1) // one frame: show it for a tick
	if n := len(m.frames); n > 1 {
		dur = float64(last + last - m.frames[n-2].t) // the last frame lasts as long as the one before
	}
	var info []byte
	info = ebmlAppendUint(info, idTimestampScale, uint64(webmTick))
	info = ebmlAppendString(info, idMuxingApp, webmApp)
	info = ebmlAppendString(info, idWritingApp, webmApp)
	info = ebmlAppendFloat(info, idDuration, dur)
	info = ebmlAppendMaster(nil, idInfo, info)

	var video []byte
	video = ebmlAppendUint(video, idPixelWidth, uint64(m.width))
	video = ebmlAppendUint(video, idPixelHeight, uint64(m.height))
	var track []byte
	track = ebmlAppendUint(track, idTrackNumber, 1)
	track = ebmlAppendUint(track, idTrackUID, 1)
	track = ebmlAppendUint(track, idTrackType, 1) // video
	track = ebmlAppendUint(track, idFlagLacing, 0)
	track = ebmlAppendString(track, idCodecID, "V_VP8")
	track = ebmlAppendMaster(track, idVideo, video)
	tracks := ebmlAppendMaster(nil, idTracks, ebmlAppendMaster(nil, idTrackEntry, track))

	// Offsets are from the start of the Segment's data.
	infoPos := uint64(len(seekHead(0, 0, 0)))
	tracksPos := infoPos + uint64(len(info))
	cuesPos := tracksPos + uint64(len(tracks))
	pos := make([]uint64, len(l.starts))
	next := cuesPos + uint64(len(cues(pos)))
	for c, body := range l.bodySize {
		pos[c] = next
		next += uint64(ebmlHeadLen(idCluster, body)) + body
	}
	segSize := next

	var h []byte
	var eh []byte
	eh = ebmlAppendUint(eh, idEBMLVersion, 1)
	eh = ebmlAppendUint(eh, idEBMLReadVersion, 1)
	eh = ebmlAppendUint(eh, idEBMLMaxIDLength, 4)
	eh = ebmlAppendUint(eh, idEBMLMaxSizeLength, 8)
	eh = ebmlAppendString(eh, idDocType, "webm")
	eh = ebmlAppendUint(eh, idDocTypeVersion, 4)
	eh = ebmlAppendUint(eh, idDocTypeReadVersion, 2)
	h = ebmlAppendMaster(h, idEBML, eh)
	h = ebmlAppendVint(ebmlAppendID(h, idSegment), segSize, 8)
	h = append(h, seekHead(infoPos, tracksPos, cuesPos)...)
	h = append(h, info...)
	h = append(h, tracks...)
	h = append(h, cues(pos)...)
	l.head = h
	return l
}

// simpleBlockLen returns the encoded length of a SimpleBlock holding a
// frame of n bytes: track number, int16 timestamp and flags, then the frame.
func simpleBlockLen(n int) int {
	return ebmlHeadLen(idSimpleBlock, uint64(4+n)) + 4 + n
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// webmWriter writes a laid-out file, frame by frame.
type webmWriter struct {
	m        *WebMMuxer
	lay      *webmLayout
	cw       *countWriter
	bw       *bufio.Writer
	next     int // index of the next frame
	cluster  int // index of the next cluster
	clusterT int64
	err      error
}

func newWebMWriter(w io.Writer, m *WebMMuxer) *webmWriter {
	cw := &countWriter{w: w}
	ww := &webmWriter{m: m, lay: m.layout(), cw: cw, bw: bufio.NewWriterSize(cw, 64<<10)}
	_, ww.err = ww.bw.Write(ww.lay.head)
	return ww
}

// frame writes frame i, which must be the next one, with its bytes p.
func (ww *webmWriter) frame(i int, p []byte) error {
	if ww.err != nil {
		return ww.err
	}
	if i != ww.next || i >= len(ww.m.frames) || len(p) != ww.m.frames[i].size {
		ww.err = errors.New("recorder: webm: frames changed between sizing and writing")
		return ww.err
	}
	f := ww.m.frames[i]
	var b [32]byte
	h := b[:0]
	if ww.cluster < len(ww.lay.starts) && ww.lay.starts[ww.cluster] == i {
		h = ebmlAppendHead(h, idCluster, ww.lay.bodySize[ww.cluster])
		h = ebmlAppendUint(h, idTimestamp, uint64(f.t))
		ww.clusterT = f.t
		ww.cluster++
	}
	h = ebmlAppendHead(h, idSimpleBlock, uint64(4+len(p)))
	h = append(h, 0x81) // track 1, as a vint
	h = binary.BigEndian.AppendUint16(h, uint16(int16(f.t-ww.clusterT)))
	var flags byte
	if f.key {
		flags |= webmFlagKey
	}
	if f.invisible {
		flags |= webmFlagInvisible
	}
	h = append(h, flags)
	if _, ww.err = ww.bw.Write(h); ww.err == nil {
		_, ww.err = ww.bw.Write(p)
	}
	ww.next++
	return ww.err
}

// finish flushes the file after the last frame.
func (ww *webmWriter) finish() error {
	if ww.err == nil && ww.next != len(ww.m.frames) {
		ww.err = errors.New("recorder: webm: frames changed between sizing and writing")
	}
	if ww.err == nil {
		ww.err = ww.bw.Flush()
	}
	return ww.err
}

// errWebMDone stops ExportWebM's second pass after the last frame.
var errWebMDone = errors.New("all frames written")

// ExportWebM writes the recording's VP8 media samples as a WebM file that
// a browser's <video> element plays and seeks in (see WebMMuxer for the
// file's layout and timestamps). It reads the recording twice, first to
// size the file keeping only each frame's timestamp and size, then to write
// it, so its memory does not grow with the video and w need not be
// seekable.
//
// Delta frames before the first key frame, malformed VP8 frames and frames
// of other codecs are left out and reported through opt.Warn. A recording
// without a VP8 key frame is an error, which says so when its video is
// H264: WebM export supports VP8 only. A recording cut short or tampered
// with is exported up to the bad record, and its error returned.
func ExportWebM(w io.Writer, r *Reader, opt ExportOptions) error {
	pass := func(n int64) ExportOptions {
		if opt.Progress == nil {
			return ExportOptions{}
		}
		return ExportOptions{Progress: func(done, total int64) { opt.Progress((n*total+done)/2, total) }}
	}
	m := NewWebMMuxer(0, 0)
	m.keep = false
	var (
		seqs        []uint64 // the records of the frames in the file, in order
		other       = map[string]int{}
		firstReject error
	)
	readErr := r.each(pass(0), func(rec *Record) error {
		if rec.Type != TypeMedia {
			return nil
		}
		if rec.Codec != "vp8" {
			other[rec.Codec]++
			return nil
		}
		n := m.stats.Frames
		if err := m.Add(rec.MediaTime, rec.Data, rec.IsKeyframe); err != nil {
			if firstReject == nil {
				firstReject = err
			}
			return nil
		}
		if m.stats.Frames > n {
			seqs = append(seqs, rec.Seq)
		}
		return nil
	})
	if readErr != nil && !errors.Is(readErr, ErrCutShort) && !errors.Is(readErr, ErrTampered) {
		return readErr
	}
	var notes []string
	if n := m.stats.Leading; n > 0 {
		notes = append(notes, fmt.Sprintf("left out %d VP8 delta frames before the first key frame", n))
	}
	if n := m.stats.Rejected; n > 0 {
		notes = append(notes, fmt.Sprintf("left out %d malformed VP8 frames (first: %s)", n,
			strings.TrimPrefix(firstReject.Error(), "recorder: webm: ")))
	}
	codecs := slices.Sorted(maps.Keys(other))
	for _, c := range codecs {
		notes = append(notes, fmt.Sprintf("left out %d %q frames: webm export supports vp8 only", other[c], c))
	}
	if len(seqs) == 0 {
		switch {
		case errors.Is(readErr, ErrTampered):
			return readErr
		case len(codecs) > 0 && m.stats.Leading+m.stats.Rejected == 0:
			return fmt.Errorf("recorder: webm export supports vp8 only; the recording's video is %q (%d frames)", codecs[0], other[codecs[0]])
		case len(notes) > 0:
			return fmt.Errorf("%w (%s)", errNoVP8, strings.Join(notes, "; "))
		}
		return errNoVP8
	}
	if opt.Warn != nil {
		for _, n := range notes {
			opt.Warn(n)
		}
	}

	ww := newWebMWriter(w, m)
	i := 0
	err := r.each(pass(1), func(rec *Record) error {
		if rec.Seq != seqs[i] {
			return nil
		}
		if err := ww.frame(i, rec.Data); err != nil {
			return err
		}
		if i++; i == len(seqs) {
			return errWebMDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errWebMDone) {
		return err
	}
	if err := ww.finish(); err != nil {
		return err
	}
	return readErr
}
