package review

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"supportgate/recorder"
)

// exportFormats are the formats a reviewer can export, with their file
// extension and media type.
var exportFormats = map[string]struct{ ext, mime string }{
	"asciicast": {"cast", "application/x-asciicast"},
	"jsonl":     {"jsonl", "application/x-ndjson"},
	"ivf":       {"ivf", "video/x-ivf"},
	"webm":      {"webm", "video/webm"},
}

// handleExport streams an export of a recording to the reviewer's browser,
// the only way decrypted content leaves this process. The source is told
// first and may refuse.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	format := r.URL.Query().Get("format")
	ft, ok := exportFormats[format]
	if !ok {
		writeErr(w, http.StatusBadRequest, "format must be asciicast, jsonl, ivf or webm")
		return
	}
	rd, done, ok := s.openFor(w, r, id)
	if !ok {
		return
	}
	defer done()
	if err := s.cfg.Source.Note(r.Context(), id, "export", format); err != nil {
		writeErr(w, http.StatusBadGateway, "cannot record this export in the gateway's audit log: "+err.Error())
		return
	}
	// The export goes to the response as it is made. Its headers go out
	// with the first byte, so an error before it is still a JSON error; an
	// error after it can only abort the response, which the browser shows
	// as a failed download rather than a whole-looking file.
	sw := &startWriter{w: w, start: func() {
		w.Header().Set("Content-Type", ft.mime)
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id+"."+ft.ext))
	}}
	var err error
	switch format {
	case "asciicast":
		err = recorder.ExportAsciicast(sw, rd, recorder.ExportOptions{})
	case "jsonl":
		err = recorder.ExportJSONL(sw, rd, recorder.ExportOptions{})
	case "ivf":
		// IVF patches the frame count into its header at the end, so it
		// is made in memory (the video records alone) and then sent.
		ws := &memFile{}
		err = recorder.ExportIVF(ws, rd, recorder.ExportOptions{})
		if err == nil || errors.Is(err, recorder.ErrCutShort) {
			if _, werr := sw.Write(ws.b); werr != nil {
				err = werr
			}
		}
	case "webm":
		err = recorder.ExportWebM(sw, rd, recorder.ExportOptions{})
	}
	switch {
	case err == nil || errors.Is(err, recorder.ErrCutShort):
		sw.Write(nil) // an empty export still gets its headers
	case !sw.started:
		writeErr(w, http.StatusUnprocessableEntity, "export: "+damage(err))
	default:
		s.log.Error("export cut off", "id", id, "format", format, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// startWriter calls start before the first write to w, even an empty one.
type startWriter struct {
	w       io.Writer
	start   func()
	started bool
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.start()
	}
	return s.w.Write(p)
}

// handleEvidence streams the evidence bundle of a recording.
func (s *Server) handleEvidence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.cat.entry(id) == nil {
		writeErr(w, http.StatusNotFound, errNotFound.Error())
		return
	}
	started := false
	err := s.writeBundle(r.Context(), w, id, func(sum string) error {
		if err := s.cfg.Source.Note(r.Context(), id, "evidence", "manifest sha256 "+sum); err != nil {
			return fmt.Errorf("cannot record this export in the gateway's audit log: %w", err)
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id+"-evidence.zip"))
		started = true
		return nil
	})
	if err != nil {
		if !started {
			writeErr(w, http.StatusUnprocessableEntity, "evidence bundle: "+err.Error())
			return
		}
		s.log.Error("evidence bundle cut off", "id", id, "err", err)
		panic(http.ErrAbortHandler) // the client sees a broken download, not a valid-looking zip
	}
}

// memFile is an in-memory io.WriteSeeker for exporters that patch headers.
type memFile struct {
	b   []byte
	off int64
}

func (m *memFile) Write(p []byte) (int, error) {
	if end := m.off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[m.off:], p)
	m.off += int64(len(p))
	return len(p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += int64(len(m.b))
	}
	if off < 0 {
		return 0, errors.New("seek before start")
	}
	m.off = off
	return off, nil
}
