package review

import (
	"bytes"
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
	ch, err := channelParam(r)
	if err != nil || ch >= 0 && format != "asciicast" {
		writeErr(w, http.StatusBadRequest, "channel must be a channel number, for asciicast only")
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
	switch format {
	case "asciicast":
		// One terminal channel: the one asked for, by default the first.
		// The player's selector says which channels there are.
		if ch < 0 {
			ch = s.defaultChannel(id, rd)
		}
		err = recorder.ExportAsciicast(sw, rd, recorder.ExportOptions{Channel: &ch})
	case "jsonl":
		err = recorder.ExportJSONL(sw, rd, recorder.ExportOptions{})
	case "ivf":
		err = exportIVF(sw, rd)
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

// exportIVF streams the IVF export of r to w. IVF patches its frame count
// into its header at the end; rather than build the file in memory, or on
// disk where it would be decrypted content, the export runs twice: the
// first pass keeps only the finished header, the second sends that header
// and then the frames as they are made. The second pass must end with the
// same header, or the response is aborted.
func exportIVF(w io.Writer, r *recorder.Reader) error {
	var first ivfHeader
	if err := recorder.ExportIVF(&first, r, recorder.ExportOptions{}); err != nil && !errors.Is(err, recorder.ErrCutShort) {
		return err
	}
	second := &ivfStream{w: w, hdr: first.hdr}
	err := recorder.ExportIVF(second, r, recorder.ExportOptions{})
	if err == nil || errors.Is(err, recorder.ErrCutShort) {
		if !second.checked {
			return errors.New("the IVF export did not finish its header")
		}
	}
	return err
}

// ivfHeaderSize is the size of an IVF file header.
const ivfHeaderSize = 32

// ivfHeader is an io.WriteSeeker for recorder.ExportIVF that keeps the
// file header, as patched last, and discards the frames.
type ivfHeader struct {
	hdr      [ivfHeaderSize]byte
	off, end int64
}

func (h *ivfHeader) Write(p []byte) (int, error) {
	if h.off < ivfHeaderSize {
		copy(h.hdr[h.off:], p)
	}
	h.off += int64(len(p))
	h.end = max(h.end, h.off)
	return len(p), nil
}

func (h *ivfHeader) Seek(off int64, whence int) (int64, error) {
	switch {
	case whence == io.SeekStart && off == 0:
		h.off = 0
	case whence == io.SeekEnd && off == 0:
		h.off = h.end
	default:
		return 0, errors.New("ivf export: unexpected seek")
	}
	return h.off, nil
}

// ivfStream is an io.WriteSeeker for recorder.ExportIVF that writes to w
// the header hdr in place of the one the export starts with, then the
// frames as they come; the header the export patches in at the end is
// checked against hdr instead of written.
type ivfStream struct {
	w        io.Writer
	hdr      [ivfHeaderSize]byte
	off      int64
	patching bool // after the seek back to the header
	checked  bool // the patched header matched hdr
}

func (s *ivfStream) Write(p []byte) (int, error) {
	n := len(p)
	if s.patching {
		if s.off+int64(n) > ivfHeaderSize || !bytes.Equal(p, s.hdr[s.off:s.off+int64(n)]) {
			return 0, errors.New("ivf export: the recording read differently the second time")
		}
		s.off += int64(n)
		s.checked = s.off == ivfHeaderSize
		return n, nil
	}
	if s.off < ivfHeaderSize {
		k := min(ivfHeaderSize-s.off, int64(n))
		if _, err := s.w.Write(s.hdr[s.off : s.off+k]); err != nil {
			return 0, err
		}
		s.off += k
		p = p[k:]
	}
	if len(p) > 0 {
		if _, err := s.w.Write(p); err != nil {
			return 0, err
		}
		s.off += int64(len(p))
	}
	return n, nil
}

func (s *ivfStream) Seek(off int64, whence int) (int64, error) {
	switch {
	case whence == io.SeekStart && off == 0 && !s.patching:
		s.patching, s.off = true, 0
	case whence == io.SeekEnd && off == 0 && s.patching:
		s.patching = false // nothing is written after this
	default:
		return 0, errors.New("ivf export: unexpected seek")
	}
	return s.off, nil
}
