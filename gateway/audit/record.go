package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
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

// canonical is the fixed shape hashed for a record. Field order is the struct
// order; encoding/json sorts Detail keys.
type canonical struct {
	Seq     uint64            `json:"seq"`
	Time    string            `json:"time"`
	Type    string            `json:"type"`
	Actor   string            `json:"actor"`
	Role    string            `json:"role"`
	Session string            `json:"session"`
	Remote  string            `json:"remote"`
	Detail  map[string]string `json:"detail"`
}

// ComputeHash returns the hash r should carry: the hex SHA-256 of
//
//	"supportgate audit record v1\x00" || Prev || "\x00" || canonical JSON
//
// where the canonical JSON is {"seq","time","type","actor","role","session",
// "remote","detail"} in that order, time in RFC 3339 with nanoseconds in UTC
// and detail an object with sorted keys ({} when empty). Hash and Sig are not
// covered.
func (r Record) ComputeHash() string {
	d := r.Detail
	if d == nil {
		d = map[string]string{}
	}
	b, err := json.Marshal(canonical{
		Seq:     r.Seq,
		Time:    r.Time.UTC().Format(time.RFC3339Nano),
		Type:    r.Type,
		Actor:   r.Actor,
		Role:    r.Role,
		Session: r.Session,
		Remote:  r.Remote,
		Detail:  d,
	})
	if err != nil {
		// Strings and a map of strings always marshal; keep the hash
		// well-defined (and certainly wrong) if that ever changes.
		return "marshal error: " + err.Error()
	}
	h := sha256.New()
	h.Write([]byte(hashTag))
	h.Write([]byte(r.Prev))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// checkpointMessage is what a checkpoint's Sig signs: a tag and the
// checkpoint record's own Hash.
func checkpointMessage(hash string) []byte {
	return append([]byte(checkpointTag), hash...)
}
