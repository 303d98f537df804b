package review

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"supportgate/recorder"
)

// countingWriter is a ResponseWriter that keeps what a handler sends and
// how: in how many writes, and the largest.
type countingWriter struct {
	httptest.ResponseRecorder
	writes, largest int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	c.largest = max(c.largest, len(p))
	return c.ResponseRecorder.Write(p)
}

// export calls the export handler for recording id and reports whether
// it aborted the response.
func export(srv *Server, id, format string) (w *countingWriter, aborted bool) {
	w = &countingWriter{ResponseRecorder: *httptest.NewRecorder()}
	r := httptest.NewRequest("GET", "/api/recordings/"+id+"/export?format="+format, nil)
	r.SetPathValue("id", id)
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			aborted = true
		}
	}()
	srv.handleExport(w, r)
	return w, false
}

// TestExportStreams checks that an export goes to the response as it is
// made, not whole at the end, and that damage after the first byte aborts
// the response instead of ending it like a whole file.
func TestExportStreams(t *testing.T) {
	f := newFixtures(t, true)
	src, _ := NewFolder(f.dir)
	srv := serve(t, src, f.keys.Identity)

	for _, format := range []string{"asciicast", "jsonl", "webm", "ivf"} {
		id := shellID
		if format == "webm" || format == "ivf" {
			id = screenID
		}
		w, aborted := export(srv, id, format)
		n := w.Body.Len()
		t.Logf("%s: %d bytes in %d writes, the largest %d", format, n, w.writes, w.largest)
		if aborted || w.Code != 200 || n == 0 {
			t.Fatalf("%s: aborted %v, status %d, %d bytes", format, aborted, w.Code, n)
		}
		if ct := w.Header().Get("Content-Type"); ct != exportFormats[format].mime {
			t.Errorf("%s: Content-Type %q, want %q", format, ct, exportFormats[format].mime)
		}
		if (format == "jsonl" || format == "ivf") && w.largest > n/2 {
			t.Errorf("%s: %d bytes in %d writes, the largest %d: not streamed", format, n, w.writes, w.largest)
		}
		if format == "ivf" {
			// Streamed in two passes, it is the file the exporter makes.
			want := exportFile(t, f, screenID)
			if !bytes.Equal(w.Body.Bytes(), want) {
				t.Errorf("ivf: %d bytes streamed differ from the %d bytes of recorder.ExportIVF", n, len(want))
			}
			if frames := int(binary.LittleEndian.Uint32(w.Body.Bytes()[24:28])); frames != f.screenN {
				t.Errorf("ivf: header says %d frames, want %d", frames, f.screenN)
			}
		}
	}

	// The tampered copy is damaged two thirds in: past the first bytes.
	w, aborted := export(srv, tamperedID, "jsonl")
	if !aborted || w.Body.Len() == 0 {
		t.Errorf("tampered: got status %d with %d bytes, aborted %v; want a response aborted after its first bytes", w.Code, w.Body.Len(), aborted)
	}
	// The truncated copy is exported up to the cut.
	if w, aborted := export(srv, truncatedID, "asciicast"); aborted || w.Code != 200 || !strings.Contains(w.Body.String(), `"version":2`) {
		t.Errorf("truncated: aborted %v, status %d, %.100q", aborted, w.Code, w.Body.String())
	}
	// Damage before the first byte is still a JSON error.
	w, aborted = export(srv, shellID, "ivf") // no video in a shell recording
	var e struct{ Error string }
	if aborted || w.Code != http.StatusUnprocessableEntity || json.NewDecoder(bytes.NewReader(w.Body.Bytes())).Decode(&e) != nil || e.Error == "" {
		t.Errorf("ivf of a shell recording: aborted %v, status %d, body %q", aborted, w.Code, w.Body.String())
	}
}

// exportFile is recorder.ExportIVF of recording id made in memory.
func exportFile(t *testing.T, f *fixtures, id string) []byte {
	t.Helper()
	rf, err := os.Open(filepath.Join(f.dir, id+".sgrec"))
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	st, _ := rf.Stat()
	r, err := recorder.Open(rf, st.Size(), f.keys.Identity)
	if err != nil {
		t.Fatal(err)
	}
	var m memFile
	if err := recorder.ExportIVF(&m, r, recorder.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return m.b
}

// memFile is an in-memory io.WriteSeeker.
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
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += int64(len(m.b))
	}
	m.off = off
	return off, nil
}
