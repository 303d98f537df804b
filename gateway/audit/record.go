package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// CheckpointType is the Type of checkpoint records, which only Log writes.
const CheckpointType = "audit.checkpoint"

// SystemActor is the Actor of records the gateway writes on its own behalf.
const SystemActor = "system"

// GenesisHash is the Prev of record 1: 64 hex zeros.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is an Event placed in the chain.
type Record struct {
	Seq uint64 `json:"seq"` // 1-based, contiguous
	Event
	Prev string `json:"prev"`          // Hash of the previous record; GenesisHash for Seq 1
	Hash string `json:"hash"`          // see ComputeHash
	Sig  string `json:"sig,omitempty"` // checkpoints only: base64 Ed25519 signature, see package doc
}

// Domain-separation tags. Changing either breaks every existing log.
const (
	hashTag       = "supportgate audit record v1\x00"
	checkpointTag = "supportgate audit checkpoint v1\x00"
)

// ComputeHash returns the hash r should carry: the hex SHA-256 of
//
//	"supportgate audit record v1\x00" || Prev || "\x00" || canonical JSON
//
// where the canonical JSON is {"seq","time","type","actor","role","session",
// "remote","detail"} in that order, time in RFC 3339 with nanoseconds in UTC
// and detail an object with sorted keys ({} when empty), every string
// escaped as encoding/json escapes it (HTML characters, U+2028 and U+2029
// included; invalid UTF-8 as U+FFFD). Hash and Sig are not covered.
func (r Record) ComputeHash() string {
	var buf [1024]byte
	b := append(buf[:0], hashTag...)
	b = append(b, r.Prev...)
	b = append(b, 0)
	b = r.appendCanonical(b)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendCanonical appends the canonical JSON of r to b. It writes exactly
// what encoding/json.Marshal writes for the fixed struct the format was
// first defined by (see TestCanonicalMatchesEncodingJSON and
// FuzzCanonical), without reflection or sorting through it.
func (r Record) appendCanonical(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":`...)
	b = appendJSONString(b, r.Type)
	b = append(b, `,"actor":`...)
	b = appendJSONString(b, r.Actor)
	b = append(b, `,"role":`...)
	b = appendJSONString(b, r.Role)
	b = append(b, `,"session":`...)
	b = appendJSONString(b, r.Session)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, r.Remote)
	b = append(b, `,"detail":`...)
	b = AppendDetailJSON(b, r.Detail)
	return append(b, '}')
}

// AppendDetailJSON appends d as a JSON object with sorted keys, as in the
// canonical form ({} when d is empty): for a non-empty d, the bytes
// encoding/json.Marshal(d) gives.
func AppendDetailJSON(b []byte, d map[string]string) []byte {
	var ks [16]string
	keys := ks[:0]
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, d[k])
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes strings by
// default (with HTML escaping).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// checkpointMessage is what a checkpoint's Sig signs: a tag and the
// checkpoint record's own Hash.
func checkpointMessage(hash string) []byte {
	return append([]byte(checkpointTag), hash...)
}
