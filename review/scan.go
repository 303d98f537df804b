package review

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"supportgate/recorder"
)

// Status is a recording's integrity as the reviewer's verifying pass found it.
type Status string

// Statuses of a recording.
const (
	StatusPending    Status = "verifying"  // the pass has not finished yet
	StatusVerified   Status = "verified"   // intact, complete, end record signed
	StatusCutShort   Status = "cut_short"  // intact prefix, no end record (crash or still running)
	StatusTampered   Status = "tampered"   // a record failed verification: TamperedAt names it
	StatusMissing    Status = "missing"    // the session has no recording
	StatusUnreadable Status = "unreadable" // not a recording, or not readable with this identity
)

// Marker kinds on the seek bar and in the timeline.
const (
	MarkConsent   = "consent"
	MarkJoin      = "join"
	MarkScope     = "scope"
	MarkChat      = "chat"
	MarkRedaction = "redaction"
	MarkEnd       = "end"
	MarkForward   = "forward"
	MarkEvent     = "event"
	// MarkInput: input the agent sent begins (what a shell or command
	// without a terminal was given, or keystrokes when they are recorded).
	MarkInput = "input"
)

// Limits on what a pass keeps in memory for one recording.
const (
	maxLineLen  = 512     // bytes of one line of terminal text kept for search
	maxLines    = 2000000 // lines of terminal text kept for search
	maxMarkers  = 20000   // timeline entries
	maxChatKept = 20000   // chat messages
	maxChannels = 1024    // terminal channels whose text is kept apart
)

// Marker is one entry of the timeline.
type Marker struct {
	Time  time.Duration `json:"-"`
	MS    int64         `json:"t"` // milliseconds since the recording's start
	Seq   uint64        `json:"seq"`
	Kind  string        `json:"kind"`
	Label string        `json:"label"`
}

// ChatLine is one chat message.
type ChatLine struct {
	MS   int64  `json:"t"`
	From string `json:"from"`
	Text string `json:"text"`
}

// textLine is one line of terminal output, escape sequences removed, with
// the time it was complete on screen.
type textLine struct {
	t    time.Duration
	text string
	ch   int32 // its terminal channel; -1 for chat and events
}

// TermChannel is a terminal channel of a recording, as the player offers
// it: a channel with output or a terminal size.
type TermChannel struct {
	N        int  `json:"n"`
	Terminal bool `json:"terminal"` // it had a terminal (a size was recorded)
}

// Video describes the media records of a recording.
type Video struct {
	Frames    int    `json:"frames"`
	Keyframes int    `json:"keyframes"`
	Codec     string `json:"codec,omitempty"`
	FirstMS   int64  `json:"first_ms"` // recording time of the first frame
}

// Summary is what one full verifying, decrypting pass over a recording
// found: its integrity, session details, timeline, chat and the text that
// search looks through.
type Summary struct {
	Status      Status            `json:"status"`
	Problem     string            `json:"problem,omitempty"` // the verifier's words for a damaged recording
	TamperedAt  uint64            `json:"tampered_at,omitempty"`
	Duration    time.Duration     `json:"-"`
	Records     uint64            `json:"records"`
	Redactions  int               `json:"redactions"`
	Signer      string            `json:"signer,omitempty"` // fingerprint of the gateway signing key
	Info        map[string]string `json:"info,omitempty"`   // the session.info event
	EndReason   string            `json:"end_reason,omitempty"`
	Markers     []Marker          `json:"markers"`
	Chat        []ChatLine        `json:"chat"`
	Video       Video             `json:"video"`
	HasTerminal bool              `json:"has_terminal"`
	// Channels are the terminal channels, in the order they first had
	// output or a size; the player shows one at a time, DefaultChannel
	// first: the channel of the first terminal size recorded, or without
	// one the first channel with output (as recorder.FirstTerminal).
	Channels       []TermChannel `json:"channels"`
	DefaultChannel int           `json:"default_channel"`
	Truncated      bool          `json:"truncated,omitempty"` // a memory limit cut the timeline or search text
	// TextCut is set when the review's budget for search text, shared by
	// every recording, ran out during this pass: search sees only the
	// text before the cut.
	TextCut bool `json:"text_cut,omitempty"`

	lines []textLine
	keep  *textBudget // what lines may take; nil keeps none

	out, input     map[int]*textExtractor // lines of each channel's output and input
	chanAt         map[int]int            // index of a channel in Channels
	firstSize      int                    // channel of the first resize; -1: none yet
	inInput        bool                   // in a run of input, which is marked at its start
	inputCh        int                    // the channel of that run
	lastInput      time.Duration          // when the last input was
	inputMarks     int                    // input markers so far
	endFromGateway bool                   // EndReason came from session.ended
}

// A run of input ends after inputPause without any; at most
// maxInputMarkers runs are marked, so that input cannot crowd the
// session's other markers out of the timeline.
const (
	inputPause      = 2 * time.Second
	maxInputMarkers = 2000
)

// textBudget is the memory that the search text of every recording of a
// review shares, in bytes. Passes run concurrently and take from it.
type textBudget struct {
	total int64
	left  atomic.Int64
}

func newTextBudget(n int64) *textBudget {
	b := &textBudget{total: n}
	b.left.Store(n)
	return b
}

// take takes n bytes, or reports that fewer are left.
func (b *textBudget) take(n int64) bool {
	for {
		left := b.left.Load()
		if left < n {
			return false
		}
		if b.left.CompareAndSwap(left, left-n) {
			return true
		}
	}
}

// lineCost is what keeping a line costs: its text and its textLine.
func lineCost(l textLine) int64 { return int64(len(l.text)) + int64(unsafe.Sizeof(l)) }

// scan reads r from the start to its end or first damage. It never returns
// an error for a damaged recording: the damage is the Summary's status.
// The search text it keeps takes from keep; with keep nil it keeps none.
func scan(ctx context.Context, r *recorder.Reader, keep *textBudget) *Summary {
	s := &Summary{Status: StatusVerified, Markers: []Marker{}, Chat: []ChatLine{}, Channels: []TermChannel{}, keep: keep}
	s.Signer = fingerprint(r.Header().Signer)
	s.out, s.input, s.chanAt, s.firstSize = map[int]*textExtractor{}, map[int]*textExtractor{}, map[int]int{}, -1
	var last time.Duration
	for n := 1; ; n++ {
		rec, err := r.Next()
		if err != nil {
			s.finish(err, r, last)
			break
		}
		last = rec.Time
		s.Records = rec.Seq
		if n%4096 == 0 && ctx.Err() != nil {
			s.Status, s.Problem = StatusPending, "stopped"
			return s
		}
		s.add(&rec)
	}
	for _, tc := range s.Channels {
		if x := s.out[tc.N]; x != nil {
			if l, ok := x.flush(last); ok {
				s.addLine(chanLine(l, tc.N))
			}
		}
		if x := s.input[tc.N]; x != nil {
			if l, ok := x.flush(last); ok {
				s.addLine(inputLine(l, tc.N))
			}
		}
	}
	switch {
	case s.firstSize >= 0:
		s.DefaultChannel = s.firstSize
	case len(s.Channels) > 0:
		s.DefaultChannel = s.Channels[0].N
	}
	return s
}

// onChannel names terminal channel ch for a label: nothing for channel 0,
// the only one of recordings before channels were recorded apart.
func onChannel(ch int) string {
	if ch == 0 {
		return ""
	}
	return fmt.Sprintf(" on channel %d", ch)
}

// chanLine is a line of channel ch's output as the search shows it.
func chanLine(l textLine, ch int) textLine {
	l.ch = int32(ch)
	if ch != 0 {
		l.text = fmt.Sprintf("[channel %d] %s", ch, l.text)
	}
	return l
}

// inputLine is a line of input to channel ch as the search shows it.
func inputLine(l textLine, ch int) textLine {
	l.ch = int32(ch)
	l.text = "input" + onChannel(ch) + ": " + l.text
	return l
}

// channel notes terminal channel ch and returns its text extractors for
// output and input, or nils past maxChannels channels.
func (s *Summary) channel(ch int, terminal bool) (out, in *textExtractor) {
	i, ok := s.chanAt[ch]
	if !ok {
		if len(s.Channels) >= maxChannels {
			s.Truncated = true
			return nil, nil
		}
		i = len(s.Channels)
		s.chanAt[ch] = i
		s.Channels = append(s.Channels, TermChannel{N: ch})
		s.out[ch], s.input[ch] = &textExtractor{}, &textExtractor{}
	}
	if terminal {
		s.Channels[i].Terminal = true
	}
	return s.out[ch], s.input[ch]
}

// finish sets the status from the error that ended the pass.
func (s *Summary) finish(err error, r *recorder.Reader, last time.Duration) {
	s.Duration = last
	s.Redactions = r.Stats().Redactions
	var te *recorder.TamperError
	switch {
	case errors.Is(err, io.EOF):
		if d, derr := r.Duration(); derr == nil && d > last {
			s.Duration = d
		}
		return
	case errors.As(err, &te):
		s.Status, s.TamperedAt = StatusTampered, te.Record
	case errors.Is(err, recorder.ErrCutShort):
		s.Status = StatusCutShort
	default:
		s.Status = StatusUnreadable
	}
	s.Problem = damage(err)
}

func (s *Summary) mark(rec *recorder.Record, kind, label string) {
	if len(s.Markers) >= maxMarkers {
		s.Truncated = true
		return
	}
	s.Markers = append(s.Markers, Marker{Time: rec.Time, MS: rec.Time.Milliseconds(), Seq: rec.Seq, Kind: kind, Label: label})
}

func (s *Summary) add(rec *recorder.Record) {
	// A run of input goes on across output (a terminal echoes each
	// keystroke between two input records) and ends at anything else,
	// input to another channel or after a pause.
	switch {
	case rec.Type == recorder.TypeInput && (rec.Time-s.lastInput > inputPause || rec.Channel != s.inputCh):
		s.inInput = false
	case rec.Type != recorder.TypeInput && rec.Type != recorder.TypeOutput:
		s.inInput = false
	}
	ch := rec.Channel
	switch rec.Type {
	case recorder.TypeOutput:
		s.HasTerminal = true
		if n := countMasks(rec.Data); n > 0 {
			s.mark(rec, MarkRedaction, fmt.Sprintf("%d redacted in terminal output%s", n, onChannel(ch)))
		}
		if tx, _ := s.channel(ch, false); tx != nil {
			for _, l := range tx.write(rec.Time, rec.Data) {
				s.addLine(chanLine(l, ch))
			}
		}
	case recorder.TypeInput:
		// Each run of input gets a marker (an upload is many records);
		// its lines are searchable beside the terminal's.
		_, in := s.channel(ch, false)
		if in == nil {
			return
		}
		lines := in.write(rec.Time, rec.Data)
		s.lastInput, s.inputCh = rec.Time, ch
		if !s.inInput && s.inputMarks < maxInputMarkers {
			s.inputMarks++
			first := "(no text)"
			if len(lines) > 0 {
				first = lines[0].text
			} else if t := strings.TrimSpace(strings.ToValidUTF8(string(in.line), "�")); t != "" {
				first = t
			}
			s.mark(rec, MarkInput, "input sent"+onChannel(ch)+": "+clip(first, 80))
		}
		for _, l := range lines {
			s.addLine(inputLine(l, ch))
		}
		s.inInput = true
		return
	case recorder.TypeResize:
		s.HasTerminal = true
		s.channel(ch, true)
		if s.firstSize < 0 {
			s.firstSize = ch
		}
	case recorder.TypeChat:
		if len(s.Chat) < maxChatKept {
			s.Chat = append(s.Chat, ChatLine{MS: rec.Time.Milliseconds(), From: rec.From, Text: rec.Text})
		} else {
			s.Truncated = true
		}
		s.mark(rec, MarkChat, rec.From+": "+clip(rec.Text, 80))
		if countMasks([]byte(rec.Text)) > 0 {
			s.mark(rec, MarkRedaction, "redacted in chat")
		}
		s.addLine(textLine{t: rec.Time, text: rec.From + ": " + clip(rec.Text, maxLineLen), ch: -1})
	case recorder.TypeEvent:
		s.event(rec)
	case recorder.TypeMedia:
		if s.Video.Keyframes == 0 && rec.IsKeyframe {
			s.Video.FirstMS = rec.Time.Milliseconds() // the WebM starts at the first key frame
		}
		s.Video.Frames++
		if rec.IsKeyframe {
			s.Video.Keyframes++
		}
		if s.Video.Codec == "" {
			s.Video.Codec = rec.Codec
		}
	case recorder.TypeForward:
		if f := rec.Forward; f != nil {
			label := fmt.Sprintf("forward %s %s", f.State, f.Target)
			if f.State == "close" {
				label += fmt.Sprintf(" (%d B up, %d B down)", f.BytesUp, f.BytesDown)
			}
			s.mark(rec, MarkForward, label)
		}
	}
}

// event turns a session event into a timeline marker of the right kind.
func (s *Summary) event(rec *recorder.Record) {
	d := rec.Detail
	switch k := rec.Kind; {
	case k == "session.info":
		if s.Info == nil {
			s.Info = d
		}
		s.mark(rec, MarkConsent, "approved by the customer: "+d["scopes"])
	case k == "session.ended" || k == "ssh.session_ended":
		// The gateway's session.ended names the reason in the broker's
		// words; the bastion's ssh.session_ended, which may come first,
		// in a sentence for the agent: the first is kept when both come.
		if d["reason"] != "" && (s.EndReason == "" || k == "session.ended" && !s.endFromGateway) {
			s.EndReason = d["reason"]
			s.endFromGateway = k == "session.ended"
		}
		s.mark(rec, MarkEnd, strings.TrimSpace("session ended "+d["reason"]))
	case k == "gateway.stopped":
		s.mark(rec, MarkEnd, "gateway stopped; the session goes on in the next part, if it was still open")
	case k == "participant.joined":
		s.mark(rec, MarkJoin, d["name"]+" joined ("+d["role"]+")")
	case k == "participant.left":
		s.mark(rec, MarkJoin, d["name"]+" left")
	case k == "ssh.shell" || k == "ssh.exec":
		label := d["agent"] + " opened a shell"
		if k == "ssh.exec" {
			label = d["agent"] + " ran: " + clip(d["command"], 80)
			s.addLine(textLine{t: rec.Time, text: d["agent"] + " ran: " + clip(d["command"], maxLineLen), ch: -1})
		}
		if d["channel_id"] != "" {
			label += " on channel " + d["channel_id"]
		}
		if d["pty"] == "no" {
			label += " (no terminal: what it was sent is marked as input)"
		}
		s.mark(rec, MarkJoin, label)
	case strings.Contains(k, "scope") || strings.Contains(k, "extend"):
		s.mark(rec, MarkScope, describe(k, d))
	case strings.HasPrefix(k, "consent"):
		s.mark(rec, MarkConsent, describe(k, d))
	default:
		s.mark(rec, MarkEvent, describe(k, d))
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func describe(kind string, d map[string]string) string {
	var b strings.Builder
	b.WriteString(kind)
	for _, k := range sortedKeys(d) {
		fmt.Fprintf(&b, " %s=%s", k, clip(d[k], 60))
	}
	return b.String()
}

func (s *Summary) addLine(l textLine) {
	if strings.TrimSpace(l.text) == "" {
		return
	}
	if s.keep == nil || s.TextCut {
		return
	}
	if len(s.lines) >= maxLines {
		s.Truncated = true
		return
	}
	if !s.keep.take(lineCost(l)) {
		s.Truncated, s.TextCut = true, true
		return
	}
	s.lines = append(s.lines, l)
}

// countMasks counts runs of at least four redaction mask characters, which
// is how the recorder masks card numbers and configured patterns.
func countMasks(p []byte) int {
	n, run := 0, 0
	for _, c := range p {
		if c == '*' {
			run++
			if run == 4 {
				n++
			}
			continue
		}
		run = 0
	}
	return n
}

// clip shortens s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// textExtractor turns terminal output into lines of plain text: escape
// sequences are dropped, backspace erases, CR and LF end a line.
type textExtractor struct {
	line  []byte
	state int // 0 text, 1 after ESC, 2 in CSI, 3 in OSC/DCS string, 4 ESC inside a string
}

func (x *textExtractor) write(t time.Duration, p []byte) []textLine {
	var out []textLine
	for _, c := range p {
		switch x.state {
		case 1:
			switch c {
			case '[':
				x.state = 2
			case ']', 'P', '_', '^', 'X':
				x.state = 3
			default:
				x.state = 0
			}
			continue
		case 2:
			if c >= 0x40 && c <= 0x7e {
				x.state = 0
			}
			continue
		case 3:
			if c == 0x07 {
				x.state = 0
			} else if c == 0x1b {
				x.state = 4
			}
			continue
		case 4:
			x.state = 0 // ST is ESC \
			continue
		}
		switch {
		case c == 0x1b:
			x.state = 1
		case c == '\n' || c == '\r':
			if l, ok := x.flush(t); ok {
				out = append(out, l)
			}
		case c == 0x08:
			if n := len(x.line); n > 0 {
				x.line = x.line[:n-1]
			}
		case c == '\t':
			x.line = append(x.line, ' ')
		case c < 0x20 || c == 0x7f:
		default:
			if len(x.line) < maxLineLen {
				x.line = append(x.line, c)
			}
		}
	}
	return out
}

func (x *textExtractor) flush(t time.Duration) (textLine, bool) {
	if len(x.line) == 0 {
		return textLine{}, false
	}
	l := textLine{t: t, text: strings.ToValidUTF8(string(x.line), "�")}
	x.line = x.line[:0]
	return l, true
}

// fingerprint is the short form of a signing key that `supportgate verify`
// prints: the first 16 bytes of its SHA-256, in hex.
func fingerprint(k ed25519.PublicKey) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:16])
}
