package review

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"supportgate/recorder"
)

// maxVideoBytes caps the WebM the player builds for one recording, in
// memory: it is decrypted content and never touches the disk.
const maxVideoBytes = 1 << 30

// cachedVideo is the WebM of the recording the reviewer watches last.
type cachedVideo struct {
	id   string
	webm []byte
	made time.Time
}

// handleVideo serves the screen share of a recording as WebM for the
// page's video element, muxed from the recorded VP8 frames. It is built
// once per recording and kept for the last one, so the element's range
// requests while seeking are cheap.
func (s *Server) handleVideo(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.videoMu.Lock()
	v := s.video
	s.videoMu.Unlock()
	if v == nil || v.id != id {
		b, err := s.buildVideo(r, id)
		if errors.Is(err, errNotFound) {
			writeErr(w, http.StatusNotFound, err.Error())
			return
		}
		if err != nil {
			writeErr(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		v = &cachedVideo{id: id, webm: b, made: s.now()}
		s.videoMu.Lock()
		s.video = v
		s.videoMu.Unlock()
	}
	w.Header().Set("Content-Type", "video/webm")
	http.ServeContent(w, r, "", v.made, bytes.NewReader(v.webm))
}

// buildVideo muxes the VP8 frames of the intact part of a recording.
// Frames the muxer cannot take are left out; damage ends the video where
// the intact part ends.
func (s *Server) buildVideo(r *http.Request, id string) ([]byte, error) {
	rd, done, err := s.cat.open(r.Context(), id)
	if err != nil {
		return nil, err
	}
	defer done()
	m := recorder.NewWebMMuxer(0, 0)
	size, h264 := 0, 0
	for {
		rec, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Info("video ends where the recording's intact part ends", "id", id, "err", damage(err))
			}
			break
		}
		if rec.Type == recorder.TypeMedia && rec.Codec == "h264" {
			h264++
		}
		if rec.Type != recorder.TypeMedia || rec.Codec != "vp8" {
			continue
		}
		if size += len(rec.Data); size > maxVideoBytes {
			return nil, errors.New("the screen share is larger than the player shows; export it as WebM instead")
		}
		m.Add(rec.MediaTime, rec.Data, rec.IsKeyframe) // a frame it rejects is counted and left out
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		if h264 > 0 {
			// WebM has no H.264; the relay takes it only from browsers
			// without VP8.
			return nil, errors.New("the screen share is H.264, which the player does not show; export it as IVF (supportgate export --format ivf) and play it with ffplay or VLC")
		}
		return nil, errors.New("no playable VP8 video in this recording")
	}
	return buf.Bytes(), nil
}
