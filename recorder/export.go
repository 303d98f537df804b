package recorder

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ExportOptions tune an export.
type ExportOptions struct {
	// Progress, if set, is called after each record with the reader's
	// position and the file size.
	Progress func(done, total int64)
	// Warn, if set, is told in one line of each thing an export left out
	// of its output and carried on (ExportWebM: frames before the first
	// key frame, malformed frames, frames of another codec;
	// ExportAsciicast: the other terminal channels).
	Warn func(msg string)
	// Channel is the terminal channel ExportAsciicast exports; nil means
	// the one FirstTerminal names.
	Channel *int
}

// Offset returns the file offset the reader has verified up to.
func (r *Reader) Offset() int64 { return r.off }

// Size returns the file size.
func (r *Reader) Size() int64 { return r.size }

// each calls fn for every record from the start. A recording cut short
// returns its *CutShortError after all intact records were passed to fn.
func (r *Reader) each(opt ExportOptions, fn func(*Record) error) error {
	r.rewind()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(&rec); err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress(r.off, r.size)
		}
	}
}

func secs(d time.Duration) json.Number {
	return json.Number(strconv.FormatFloat(d.Seconds(), 'f', 6, 64))
}

// utf8Carry holds an incomplete UTF-8 sequence at the end of a chunk so that
// text split across records is not mangled.
type utf8Carry struct{ pending []byte }

func (c *utf8Carry) text(p []byte) string {
	b := append(c.pending, p...)
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	c.pending = append([]byte(nil), b[cut:]...)
	return string(b[:cut])
}

// ExportAsciicast writes one terminal channel of the recording (see
// ExportOptions.Channel) as an asciicast v2 file: its output ("o"), input
// ("i") and resizes ("r"), and chat and session events as markers ("m").
// Keyframes are not exported. Other channels with terminal records are
// left out and named through opt.Warn.
func ExportAsciicast(w io.Writer, r *Reader, opt ExportOptions) error {
	ch := 0
	if opt.Channel != nil {
		ch = *opt.Channel
	} else {
		ch = r.FirstTerminal()
	}
	others := map[int]bool{}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var pending [][]any
	started := false
	var out, in utf8Carry
	start := func(cols, rows int) error {
		started = true
		h := map[string]any{
			"version": 2, "width": cols, "height": rows,
			"timestamp": r.hdr.Start.Unix(),
			"title":     fmt.Sprintf("session %s (recording %s)", r.hdr.SessionID, r.hdr.RecordingID),
			"env":       map[string]string{"TERM": "xterm-256color"},
		}
		if err := enc.Encode(h); err != nil {
			return err
		}
		for _, ev := range pending {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
		pending = nil
		return nil
	}
	emit := func(ev []any) error {
		if !started {
			pending = append(pending, ev)
			return nil
		}
		return enc.Encode(ev)
	}
	err := r.each(opt, func(rec *Record) error {
		t := secs(rec.Time)
		if rec.Type.IsTerminal() && rec.Channel != ch {
			if rec.Type != TypeKeyframe {
				others[rec.Channel] = true
			}
			return nil
		}
		switch rec.Type {
		case TypeResize:
			if !started {
				return start(rec.Cols, rec.Rows)
			}
			return emit([]any{t, "r", fmt.Sprintf("%dx%d", rec.Cols, rec.Rows)})
		case TypeOutput:
			if !started {
				if err := start(80, 24); err != nil {
					return err
				}
			}
			return emit([]any{t, "o", out.text(rec.Data)})
		case TypeInput:
			return emit([]any{t, "i", in.text(rec.Data)})
		case TypeChat:
			return emit([]any{t, "m", fmt.Sprintf("chat %s: %s", rec.From, rec.Text)})
		case TypeEvent:
			return emit([]any{t, "m", eventLabel(rec)})
		}
		return nil
	})
	if !started {
		if err := start(80, 24); err != nil {
			return err
		}
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if len(others) > 0 && opt.Warn != nil {
		var names []string
		for _, n := range slices.Sorted(maps.Keys(others)) {
			names = append(names, strconv.Itoa(n))
		}
		word := "channel"
		if len(names) > 1 {
			word = "channels"
		}
		opt.Warn(fmt.Sprintf("exported terminal channel %d; left out %s %s (export each on its own)", ch, word, strings.Join(names, ", ")))
	}
	return err
}

// ExportIVF writes the recording's video as an IVF file (millisecond
// timebase), starting at the first key frame: VP8 frames with the VP80
// fourcc, or H.264 access units (Annex B) with the H264 fourcc, which
// ffmpeg reads too. The codec of the first key frame decides; frames of
// the other codec after it are left out and reported through opt.Warn. w
// must be seekable because the header carries the frame count.
func ExportIVF(w io.WriteSeeker, r *Reader, opt ExportOptions) error {
	var hdr [32]byte
	copy(hdr[0:4], "DKIF")
	binary.LittleEndian.PutUint16(hdr[6:8], 32)
	binary.LittleEndian.PutUint32(hdr[16:20], 1000) // timebase denominator
	binary.LittleEndian.PutUint32(hdr[20:24], 1)    // timebase numerator
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	var (
		frames uint32
		codec  string
		other  int  // frames of another codec left out
		media  bool // a video frame was recorded at all
	)
	last := int64(-1)
	err := r.each(opt, func(rec *Record) error {
		if rec.Type != TypeMedia || (rec.Codec != "vp8" && rec.Codec != "h264") {
			return nil
		}
		media = true
		if frames == 0 {
			cols, rows, ok := keyFrameSize(rec)
			if !ok {
				return nil // start at a key frame
			}
			codec = rec.Codec
			copy(hdr[8:12], ivfFourCC[codec])
			binary.LittleEndian.PutUint16(hdr[12:14], uint16(cols))
			binary.LittleEndian.PutUint16(hdr[14:16], uint16(rows))
		} else if rec.Codec != codec {
			other++
			return nil
		}
		pts := max(rec.MediaTime.Milliseconds(), last+1)
		last = pts
		var fh [12]byte
		binary.LittleEndian.PutUint32(fh[0:4], uint32(len(rec.Data)))
		binary.LittleEndian.PutUint64(fh[4:12], uint64(pts))
		bw.Write(fh[:])
		_, err := bw.Write(rec.Data)
		frames++
		return err
	})
	if ferr := bw.Flush(); ferr != nil {
		return ferr
	}
	if err != nil && !errors.Is(err, ErrCutShort) {
		return err
	}
	switch {
	case !media:
		return errors.New("recorder: no screen share in the recording: it has no video to export")
	case frames == 0:
		return errors.New("recorder: no VP8 or H.264 key frame in the recording")
	}
	if other > 0 && opt.Warn != nil {
		opt.Warn(fmt.Sprintf("left out %d frames that are not %s (the share changed codec)", other, ivfFourCC[codec]))
	}
	binary.LittleEndian.PutUint32(hdr[24:28], frames)
	if _, serr := w.Seek(0, io.SeekStart); serr != nil {
		return serr
	}
	if _, werr := w.Write(hdr[:]); werr != nil {
		return werr
	}
	_, serr := w.Seek(0, io.SeekEnd)
	if serr != nil {
		return serr
	}
	return err
}

// ivfFourCC is the IVF codec tag of each recorded video codec.
var ivfFourCC = map[string]string{"vp8": "VP80", "h264": "H264"}

// keyFrameSize returns the picture size of a media record that a decoder
// can start from: a VP8 key frame, or an H.264 access unit marked as a key
// frame that carries its sequence parameter set.
func keyFrameSize(rec *Record) (int, int, bool) {
	if rec.Codec == "h264" {
		if !rec.IsKeyframe {
			return 0, 0, false
		}
		return h264KeySize(rec.Data)
	}
	return vp8KeyframeSize(rec.Data)
}

// vp8KeyframeSize returns the dimensions of a VP8 key frame.
func vp8KeyframeSize(f []byte) (int, int, bool) {
	if len(f) < 10 || f[0]&1 != 0 || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	return int(binary.LittleEndian.Uint16(f[6:8]) & 0x3fff), int(binary.LittleEndian.Uint16(f[8:10]) & 0x3fff), true
}

// jsonRecord is one line of the JSON lines export.
type jsonRecord struct {
	Seq        uint64            `json:"seq,omitempty"`
	Time       json.Number       `json:"t"`
	Type       string            `json:"type"`
	Channel    *int              `json:"channel,omitempty"` // output, input, resize, keyframe
	Text       *string           `json:"text,omitempty"`
	DataB64    string            `json:"data_b64,omitempty"`
	Cols       int               `json:"cols,omitempty"`
	Rows       int               `json:"rows,omitempty"`
	From       string            `json:"from,omitempty"`
	Kind       string            `json:"kind,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
	Codec      string            `json:"codec,omitempty"`
	MediaTime  *json.Number      `json:"media_t,omitempty"`
	IsKeyframe bool              `json:"keyframe,omitempty"`
	Size       int               `json:"size,omitempty"`
	Forward    *ForwardMeta      `json:"forward,omitempty"`

	RecordingID string `json:"recording_id,omitempty"`
	SessionID   string `json:"session_id,omitempty"`
	Start       string `json:"start,omitempty"`
	Signer      string `json:"signer,omitempty"`
}

// ExportJSONL writes a header line and then one JSON object per record.
// Terminal data is "text" when it is valid UTF-8 and "data_b64" otherwise;
// media samples are included base64-encoded.
func ExportJSONL(w io.Writer, r *Reader, opt ExportOptions) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	err := enc.Encode(jsonRecord{
		Time: "0", Type: "header", RecordingID: r.hdr.RecordingID, SessionID: r.hdr.SessionID,
		Start: r.hdr.Start.UTC().Format(time.RFC3339Nano), Signer: base64.StdEncoding.EncodeToString(r.hdr.Signer),
	})
	if err != nil {
		return err
	}
	err = r.each(opt, func(rec *Record) error {
		j := jsonRecord{Seq: rec.Seq, Time: secs(rec.Time), Type: rec.Type.String()}
		if rec.Type.IsTerminal() {
			j.Channel = &rec.Channel
		}
		switch rec.Type {
		case TypeOutput, TypeInput:
			if utf8.Valid(rec.Data) {
				s := string(rec.Data)
				j.Text = &s
			} else {
				j.DataB64 = base64.StdEncoding.EncodeToString(rec.Data)
			}
		case TypeResize:
			j.Cols, j.Rows = rec.Cols, rec.Rows
		case TypeKeyframe:
			j.Cols, j.Rows = rec.Cols, rec.Rows
			s := string(rec.Data)
			j.Text = &s
		case TypeChat:
			j.From, j.Text = rec.From, &rec.Text
		case TypeEvent:
			j.Kind, j.Detail = rec.Kind, rec.Detail
		case TypeMedia:
			mt := secs(rec.MediaTime)
			j.Codec, j.MediaTime, j.IsKeyframe, j.Size = rec.Codec, &mt, rec.IsKeyframe, len(rec.Data)
			j.DataB64 = base64.StdEncoding.EncodeToString(rec.Data)
		case TypeForward:
			j.Forward = rec.Forward
		}
		return enc.Encode(j)
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// eventLabel is an asciicast marker for a session event: its kind and
// details (the command of an ssh.exec, the reason of an end), sorted by
// key, so that a player that shows only markers shows what happened.
func eventLabel(rec *Record) string {
	label := "event " + rec.Kind
	for _, k := range slices.Sorted(maps.Keys(rec.Detail)) {
		label += " " + k + "=" + rec.Detail[k]
	}
	return label
}
