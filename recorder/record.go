package recorder

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Type is the type of a record.
type Type byte

// Record types. Their numbers are part of the file format.
const (
	TypeOutput   Type = 1 // terminal output
	TypeInput    Type = 2 // terminal input (only when configured)
	TypeResize   Type = 3 // terminal size
	TypeChat     Type = 4 // a chat message
	TypeEvent    Type = 5 // a session event (consent, scope change, join, expiry, ...)
	TypeMedia    Type = 6 // a media sample (VP8 or H264 frame)
	TypeForward  Type = 7 // forwarded-connection metadata
	TypeKeyframe Type = 8 // terminal screen state, for seeking
)

var typeNames = map[Type]string{
	TypeOutput: "output", TypeInput: "input", TypeResize: "resize", TypeChat: "chat",
	TypeEvent: "event", TypeMedia: "media", TypeForward: "forward", TypeKeyframe: "keyframe",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// ForwardMeta describes a forwarded connection (tunnel or port forward).
// Only metadata is recorded, never the forwarded bytes.
type ForwardMeta struct {
	ID        string `json:"id,omitempty"`
	State     string `json:"state"`              // "open" or "close"
	Protocol  string `json:"protocol,omitempty"` // "tcp"
	Source    string `json:"source,omitempty"`   // originating address
	Target    string `json:"target,omitempty"`   // host:port on the customer's side
	BytesUp   int64  `json:"bytes_up,omitempty"`
	BytesDown int64  `json:"bytes_down,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Record is one decrypted record. Which fields are set depends on Type.
type Record struct {
	Seq  uint64        // sequence number, from 1
	Time time.Duration // since the recording's start
	Type Type

	// Channel is the terminal channel of an output, input, resize or
	// keyframe record: the bastion's number of the SSH channel it belongs
	// to. Records of versions 1 and 2, and of a Writer's Output, Input,
	// Stdin and Resize, are channel 0.
	Channel int

	Data []byte // output, input, media frame, keyframe (escape sequences)

	Cols, Rows int // resize, keyframe

	From, Text string // chat

	Kind   string            // event
	Detail map[string]string // event

	Codec      string        // media: "vp8" or "h264"
	MediaTime  time.Duration // media: sample timestamp
	IsKeyframe bool          // media: a key frame

	Forward *ForwardMeta // forward
}

type chatBody struct {
	From string `json:"from"`
	Text string `json:"text"`
}

type eventBody struct {
	Kind   string            `json:"kind"`
	Detail map[string]string `json:"detail,omitempty"`
}

var errBadRecord = errors.New("malformed record")

// IsTerminal reports whether records of type t belong to a terminal
// channel (and carry its number from version 3 on).
func (t Type) IsTerminal() bool {
	return t == TypeOutput || t == TypeInput || t == TypeResize || t == TypeKeyframe
}

// decodeRecord parses a decrypted plaintext of a recording of the given
// format version: one type byte, then the body, which for a terminal
// record of version 3 starts with its channel number. Data aliases pt.
func decodeRecord(pt []byte, version int) (Record, error) {
	if len(pt) < 1 {
		return Record{}, errBadRecord
	}
	r := Record{Type: Type(pt[0])}
	body := pt[1:]
	if version >= version3 && r.Type.IsTerminal() {
		ch, n := binary.Uvarint(body)
		// One encoding per number: the shortest, as the Writer writes it.
		if n <= 0 || ch > MaxChannel || n != uvarintLen(ch) {
			return Record{}, errBadRecord
		}
		r.Channel, body = int(ch), body[n:]
	}
	switch r.Type {
	case TypeOutput, TypeInput:
		r.Data = body
	case TypeResize, TypeKeyframe:
		if len(body) < 4 {
			return Record{}, errBadRecord
		}
		r.Cols = int(binary.BigEndian.Uint16(body))
		r.Rows = int(binary.BigEndian.Uint16(body[2:]))
		if r.Type == TypeKeyframe {
			r.Data = body[4:]
		}
	case TypeChat:
		var c chatBody
		if err := json.Unmarshal(body, &c); err != nil {
			return Record{}, errBadRecord
		}
		r.From, r.Text = c.From, c.Text
	case TypeEvent:
		var e eventBody
		if err := json.Unmarshal(body, &e); err != nil {
			return Record{}, errBadRecord
		}
		r.Kind, r.Detail = e.Kind, e.Detail
	case TypeMedia:
		if len(body) < 1 || len(body) < 1+int(body[0])+9 {
			return Record{}, errBadRecord
		}
		n := int(body[0])
		r.Codec = string(body[1 : 1+n])
		rest := body[1+n:]
		r.MediaTime = time.Duration(binary.BigEndian.Uint64(rest))
		r.IsKeyframe = rest[8]&1 != 0
		r.Data = rest[9:]
	case TypeForward:
		var f ForwardMeta
		if err := json.Unmarshal(body, &f); err != nil {
			return Record{}, errBadRecord
		}
		r.Forward = &f
	default:
		return Record{}, errBadRecord
	}
	return r, nil
}

// uvarintLen is the length of the shortest uvarint encoding of x.
func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

func appendSize(b []byte, cols, rows int) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, uint16(cols)), uint16(rows))
}

func appendMedia(b []byte, codec string, ts time.Duration, frame []byte, key bool) []byte {
	b = append(b, byte(len(codec)))
	b = append(b, codec...)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	var flags byte
	if key {
		flags = 1
	}
	b = append(b, flags)
	return append(b, frame...)
}
