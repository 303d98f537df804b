package recorder_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// A small EBML reader for the tests, written from the Matroska
// specification independently of the muxer: element IDs are spelled out
// here again, so a wrong constant in the muxer shows as a wrong file.
const (
	ebmlHeader          = 0x1A45DFA3
	ebmlVersion         = 0x4286
	ebmlReadVersion     = 0x42F7
	ebmlDocType         = 0x4282
	ebmlDocTypeVersion  = 0x4287
	ebmlDocTypeReadVers = 0x4285
	mkvSegment          = 0x18538067
	mkvSeekHead         = 0x114D9B74
	mkvSeek             = 0x4DBB
	mkvSeekID           = 0x53AB
	mkvSeekPosition     = 0x53AC
	mkvInfo             = 0x1549A966
	mkvTimestampScale   = 0x2AD7B1
	mkvMuxingApp        = 0x4D80
	mkvWritingApp       = 0x5741
	mkvDuration         = 0x4489
	mkvTracks           = 0x1654AE6B
	mkvTrackEntry       = 0xAE
	mkvTrackNumber      = 0xD7
	mkvTrackType        = 0x83
	mkvCodecID          = 0x86
	mkvVideo            = 0xE0
	mkvPixelWidth       = 0xB0
	mkvPixelHeight      = 0xBA
	mkvCues             = 0x1C53BB6B
	mkvCuePoint         = 0xBB
	mkvCueTime          = 0xB3
	mkvCueTrackPos      = 0xB7
	mkvCueTrack         = 0xF7
	mkvCueClusterPos    = 0xF1
	mkvCluster          = 0x1F43B675
	mkvTimestamp        = 0xE7
	mkvSimpleBlock      = 0xA3
)

var ebmlMasters = map[uint32]bool{
	ebmlHeader: true, mkvSegment: true, mkvSeekHead: true, mkvSeek: true, mkvInfo: true,
	mkvTracks: true, mkvTrackEntry: true, mkvVideo: true, mkvCues: true, mkvCuePoint: true,
	mkvCueTrackPos: true, mkvCluster: true,
}

// ebmlElem is one parsed element.
type ebmlElem struct {
	id   uint32
	off  int    // file offset of the ID
	data []byte // the element's data
	dOff int    // file offset of the data
	kids []ebmlElem
}

// readVint reads a variable-length integer: the position of the first set
// bit gives the length. It returns the raw bytes' value with the marker
// kept (for IDs) and removed (for sizes).
func readVint(b []byte, maxLen int) (raw, val uint64, n int, err error) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, 0, errors.New("bad vint")
	}
	n = bits.LeadingZeros8(b[0]) + 1
	if n > maxLen || n > len(b) {
		return 0, 0, 0, fmt.Errorf("vint of %d bytes", n)
	}
	for _, c := range b[:n] {
		raw = raw<<8 | uint64(c)
	}
	return raw, raw &^ (1 << (7 * n)), n, nil
}

// walkEBML parses b as a sequence of elements filling it exactly; base is
// b's offset in the file. Masters are parsed recursively.
func walkEBML(b []byte, base int) ([]ebmlElem, error) {
	var out []ebmlElem
	for off := 0; off < len(b); {
		id, _, n, err := readVint(b[off:], 4)
		if err != nil {
			return nil, fmt.Errorf("offset %d: element ID: %v", base+off, err)
		}
		_, size, m, err := readVint(b[off+n:], 8)
		if err != nil {
			return nil, fmt.Errorf("offset %d: element %x size: %v", base+off, id, err)
		}
		if size == 1<<(7*m)-1 {
			return nil, fmt.Errorf("offset %d: element %x of unknown size", base+off, id)
		}
		d := off + n + m
		if size > uint64(len(b)-d) {
			return nil, fmt.Errorf("offset %d: element %x of %d bytes overruns its parent", base+off, id, size)
		}
		e := ebmlElem{id: uint32(id), off: base + off, data: b[d : d+int(size)], dOff: base + d}
		if ebmlMasters[e.id] {
			if e.kids, err = walkEBML(e.data, e.dOff); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
		off = d + int(size)
	}
	return out, nil
}

func (e ebmlElem) uint() uint64 {
	var v uint64
	for _, c := range e.data {
		v = v<<8 | uint64(c)
	}
	return v
}

func (e ebmlElem) float() float64 {
	switch len(e.data) {
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(e.data)))
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(e.data))
	}
	return math.NaN()
}

// kid returns e's only child with the given ID.
func (e ebmlElem) kid(id uint32) (ebmlElem, error) {
	var found []ebmlElem
	for _, k := range e.kids {
		if k.id == id {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		return ebmlElem{}, fmt.Errorf("element %x: %d children %x, want 1", e.id, len(found), id)
	}
	return found[0], nil
}

// webmBlock is one SimpleBlock of a parsed WebM file.
type webmBlock struct {
	t         int64 // absolute, in ticks
	key       bool
	invisible bool
	data      []byte
}

// webmFile is what parseWebM found.
type webmFile struct {
	docType                string
	width, height          int
	codec                  string
	timestampScale         uint64
	muxingApp, writingApp  string
	duration               float64
	blocks                 []webmBlock
	clusters               []int64 // timestamps
	cues                   []int64 // cue times
	docVersion, docReadVer uint64
}

// parseWebM checks that b is a WebM file of the shape the muxer writes: an
// EBML header and one Segment filling the rest of the file, whose children
// are SeekHead, Info, Tracks, Cues and one or more Clusters; seek entries
// and cue points that point at the right elements; one VP8 video track;
// clusters of SimpleBlocks on track 1 with strictly increasing times and a
// key frame first; a cue point for exactly the clusters that start with a
// key frame.
func parseWebM(b []byte) (*webmFile, error) {
	top, err := walkEBML(b, 0)
	if err != nil {
		return nil, err
	}
	if len(top) != 2 || top[0].id != ebmlHeader || top[1].id != mkvSegment {
		return nil, fmt.Errorf("top level: got %d elements, want EBML header and Segment", len(top))
	}
	f := &webmFile{}
	for _, want := range []struct {
		id  uint32
		dst *uint64
	}{{ebmlDocTypeVersion, &f.docVersion}, {ebmlDocTypeReadVers, &f.docReadVer}} {
		e, err := top[0].kid(want.id)
		if err != nil {
			return nil, err
		}
		*want.dst = e.uint()
	}
	dt, err := top[0].kid(ebmlDocType)
	if err != nil {
		return nil, err
	}
	f.docType = string(dt.data)

	seg := top[1]
	order := []uint32{mkvSeekHead, mkvInfo, mkvTracks, mkvCues}
	if len(seg.kids) <= len(order) {
		return nil, fmt.Errorf("segment: %d children", len(seg.kids))
	}
	at := map[int]ebmlElem{} // children by offset from the segment's data
	for i, k := range seg.kids {
		want := uint32(mkvCluster)
		if i < len(order) {
			want = order[i]
		}
		if k.id != want {
			return nil, fmt.Errorf("segment child %d: got %x, want %x", i, k.id, want)
		}
		at[k.off-seg.dOff] = k
	}

	for _, s := range seg.kids[0].kids {
		if s.id != mkvSeek {
			return nil, fmt.Errorf("seek head: child %x", s.id)
		}
		id, err := s.kid(mkvSeekID)
		if err != nil {
			return nil, err
		}
		pos, err := s.kid(mkvSeekPosition)
		if err != nil {
			return nil, err
		}
		if e, ok := at[int(pos.uint())]; !ok || e.id != uint32(id.uint()) {
			return nil, fmt.Errorf("seek entry %x points at %d, not at that element", id.uint(), pos.uint())
		}
	}

	info := seg.kids[1]
	for _, e := range info.kids {
		switch e.id {
		case mkvTimestampScale:
			f.timestampScale = e.uint()
		case mkvMuxingApp:
			f.muxingApp = string(e.data)
		case mkvWritingApp:
			f.writingApp = string(e.data)
		case mkvDuration:
			f.duration = e.float()
		}
	}

	tracks := seg.kids[2]
	if len(tracks.kids) != 1 || tracks.kids[0].id != mkvTrackEntry {
		return nil, errors.New("tracks: want one track entry")
	}
	te := tracks.kids[0]
	for _, want := range []struct {
		id  uint32
		val uint64
	}{{mkvTrackNumber, 1}, {mkvTrackType, 1}} {
		e, err := te.kid(want.id)
		if err != nil {
			return nil, err
		}
		if e.uint() != want.val {
			return nil, fmt.Errorf("track: element %x is %d, want %d", want.id, e.uint(), want.val)
		}
	}
	codec, err := te.kid(mkvCodecID)
	if err != nil {
		return nil, err
	}
	f.codec = string(codec.data)
	video, err := te.kid(mkvVideo)
	if err != nil {
		return nil, err
	}
	for _, d := range []struct {
		id  uint32
		dst *int
	}{{mkvPixelWidth, &f.width}, {mkvPixelHeight, &f.height}} {
		e, err := video.kid(d.id)
		if err != nil {
			return nil, err
		}
		*d.dst = int(e.uint())
	}

	keyCluster := map[int]int64{} // offset of each cluster starting with a key frame: its time
	last := int64(-1)
	for _, c := range seg.kids[4:] {
		if len(c.kids) < 2 || c.kids[0].id != mkvTimestamp {
			return nil, fmt.Errorf("cluster at %d: want a timestamp and blocks", c.off)
		}
		ct := int64(c.kids[0].uint())
		f.clusters = append(f.clusters, ct)
		for i, sb := range c.kids[1:] {
			if sb.id != mkvSimpleBlock {
				return nil, fmt.Errorf("cluster at %d: child %x", c.off, sb.id)
			}
			if len(sb.data) < 4 || sb.data[0] != 0x81 {
				return nil, fmt.Errorf("block at %d: not on track 1", sb.off)
			}
			blk := webmBlock{
				t:         ct + int64(int16(binary.BigEndian.Uint16(sb.data[1:3]))),
				key:       sb.data[3]&0x80 != 0,
				invisible: sb.data[3]&0x08 != 0,
				data:      sb.data[4:],
			}
			if sb.data[3]&0x06 != 0 {
				return nil, fmt.Errorf("block at %d: laced", sb.off)
			}
			if blk.t <= last {
				return nil, fmt.Errorf("block at %d: time %d after %d", sb.off, blk.t, last)
			}
			if len(f.blocks) == 0 && !blk.key {
				return nil, errors.New("first block is not a key frame")
			}
			if i == 0 && blk.key {
				keyCluster[c.off-seg.dOff] = blk.t
			}
			last = blk.t
			f.blocks = append(f.blocks, blk)
		}
	}

	for _, cp := range seg.kids[3].kids {
		if cp.id != mkvCuePoint {
			return nil, fmt.Errorf("cues: child %x", cp.id)
		}
		ct, err := cp.kid(mkvCueTime)
		if err != nil {
			return nil, err
		}
		tp, err := cp.kid(mkvCueTrackPos)
		if err != nil {
			return nil, err
		}
		track, err := tp.kid(mkvCueTrack)
		if err != nil {
			return nil, err
		}
		pos, err := tp.kid(mkvCueClusterPos)
		if err != nil {
			return nil, err
		}
		t, ok := keyCluster[int(pos.uint())]
		if track.uint() != 1 || !ok || t != int64(ct.uint()) {
			return nil, fmt.Errorf("cue point for time %d at %d: not a key frame cluster of that time", ct.uint(), pos.uint())
		}
		delete(keyCluster, int(pos.uint()))
		f.cues = append(f.cues, t)
	}
	if len(keyCluster) > 0 {
		return nil, fmt.Errorf("%d key frame clusters without a cue point", len(keyCluster))
	}
	return f, nil
}
