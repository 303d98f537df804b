package review

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"supportgate/recorder"
	"supportgate/web"
)

// Config configures a review Server.
type Config struct {
	// Source lists and opens the recordings. Required.
	Source Source
	// Identities decrypt the recordings' data keys. Required.
	Identities []age.Identity
	// Host is the address the server is reached at, "127.0.0.1:PORT":
	// requests naming another host are refused (DNS rebinding).
	// Required.
	Host string
	// EvidenceKey signs the manifests of evidence bundles. Required.
	EvidenceKey ed25519.PrivateKey
	// Reviewer names who reviews, for bundle manifests.
	Reviewer string
	// Logger, nil for none. It never receives decrypted content.
	Logger *slog.Logger
	// Rand is the source of the access token; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSearchText caps the memory, in bytes, that the search text of all
	// recordings together takes; 0 means DefaultMaxSearchText. Recordings
	// verified after it runs out are searched only up to where it did.
	MaxSearchText int64
}

// DefaultMaxSearchText is the search text a review keeps when
// Config.MaxSearchText is 0.
const DefaultMaxSearchText = 512 << 20

// Server serves the review page and its API. Create with New, serve
// Handler on a loopback listener, and Close when done.
type Server struct {
	cfg   Config
	cat   *catalog
	token string
	log   *slog.Logger
	now   func() time.Time

	videoMu sync.Mutex // guards video
	video   *cachedVideo

	closeOnce sync.Once
}

// New lists the source's recordings and starts verifying them in the
// background.
func New(ctx context.Context, cfg Config) (*Server, error) {
	switch {
	case cfg.Source == nil:
		return nil, errors.New("review: Source is required")
	case len(cfg.Identities) == 0:
		return nil, errors.New("review: an identity is required")
	case cfg.Host == "":
		return nil, errors.New("review: Host is required")
	case len(cfg.EvidenceKey) != ed25519.PrivateKeySize:
		return nil, errors.New("review: EvidenceKey is required")
	}
	if !Loopback(cfg.Host) {
		return nil, fmt.Errorf("review: %s is not a loopback address; the player serves decrypted recordings and listens on loopback only", cfg.Host)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSearchText <= 0 {
		cfg.MaxSearchText = DefaultMaxSearchText
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tok [32]byte
	if _, err := io.ReadFull(cfg.Rand, tok[:]); err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	cat, err := newCatalog(ctx, cfg.Source, cfg.Identities, newTextBudget(cfg.MaxSearchText), log)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, cat: cat, token: base64.RawURLEncoding.EncodeToString(tok[:]), log: log, now: cfg.Now}, nil
}

// Loopback reports whether hostport names a loopback address: the only
// kind the review server listens on, as it serves decrypted recordings.
func Loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL is the address to open in a browser: the page, under the secret
// path prefix /r/TOKEN/ that everything the server answers lives under.
//
// The token is in the path rather than in a cookie because browsers do
// not isolate cookies by port: any other server on 127.0.0.1 that the
// browser visits would be sent a cookie of this one. A path is sent only
// to this origin; Referrer-Policy: no-referrer keeps it out of requests
// to others, and the page and its scripts use relative URLs only, so that
// API calls, the video element's source and downloads all carry it
// without a header.
func (s *Server) URL() string { return "http://" + s.cfg.Host + s.prefix() + "/" }

// prefix is the secret path prefix, without its trailing slash.
func (s *Server) prefix() string { return "/r/" + s.token }

// Close stops the background verification. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(s.cat.close)
	return nil
}

// Handler returns the HTTP handler of the page, its assets and the API,
// all under the secret prefix of URL; every other path is not found.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(web.FS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /api/recordings", s.handleList)
	mux.HandleFunc("GET /api/recordings/{id}", s.handleOpen)
	mux.HandleFunc("GET /api/recordings/{id}/term", s.handleTerm)
	mux.HandleFunc("GET /api/recordings/{id}/video.webm", s.handleVideo)
	mux.HandleFunc("GET /api/recordings/{id}/export", s.handleExport)
	mux.HandleFunc("GET /api/recordings/{id}/evidence.zip", s.handleEvidence)
	mux.HandleFunc("GET /api/search", s.handleSearch)
	mux.HandleFunc("/", notFound)
	return s.guard(s.secret(mux))
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeErr(w, http.StatusNotFound, "not found")
}

// guard sets the hardening headers (among them Referrer-Policy:
// no-referrer, which keeps the secret prefix out of other sites'
// requests) and refuses requests for another host (DNS rebinding).
func (s *Server) guard(next http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(s.cfg.Host)
	hosts := map[string]bool{s.cfg.Host: true, "localhost:" + port: true, "127.0.0.1:" + port: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.SetSecurityHeaders(w.Header())
		if !hosts[r.Host] {
			writeErr(w, http.StatusMisdirectedRequest, "this player answers only on "+s.cfg.Host)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// secret admits requests under the secret prefix /r/TOKEN/, compared in
// constant time, and serves them with the prefix stripped. Anything else,
// a wrong token included, is answered as an unknown path is: 404.
func (s *Server) secret(next http.Handler) http.Handler {
	strip := http.StripPrefix(s.prefix(), next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/r/")
		tok, _, slash := strings.Cut(rest, "/")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
			notFound(w, r)
			return
		}
		if !slash {
			// The page's relative URLs need the trailing slash.
			http.Redirect(w, r, s.prefix()+"/", http.StatusSeeOther)
			return
		}
		strip.ServeHTTP(w, r)
	})
}

// page serves the review page.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	b, err := web.FS.ReadFile("review.html")
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "page missing")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// truncater is a Source that can say its list left recordings out.
type truncater interface{ Truncated() bool }

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	t, ok := s.cfg.Source.(truncater)
	writeJSON(w, http.StatusOK, map[string]any{
		"source": s.cfg.Source.Name(), "recordings": s.cat.list(), "truncated": ok && t.Truncated(),
	})
}

// openView is what the player loads when a recording is opened.
type openView struct {
	view
	Keyframes []int64  `json:"keyframes"` // times of the channel's screen keyframes, ms
	Summary   *Summary `json:"summary,omitempty"`
	// Channel is the terminal channel the player shows first: the
	// summary's default, or before the pass has finished the first
	// terminal channel found from the start.
	Channel int `json:"channel"`
}

// handleOpen answers the player opening a recording: its details, its
// length and keyframe times from the signed index, and the full pass's
// findings once it has finished. The source is told first; if it cannot
// record the access (the gateway's audit log), the recording stays shut.
func (s *Server) handleOpen(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, ok := s.cat.view(id)
	if !ok {
		writeErr(w, http.StatusNotFound, errNotFound.Error())
		return
	}
	out := openView{view: v, Keyframes: []int64{}, Summary: v.Summary}
	if v.Missing {
		writeJSON(w, http.StatusOK, out)
		return
	}
	if r.URL.Query().Get("refresh") == "" {
		if err := s.cfg.Source.Note(r.Context(), id, "open", ""); err != nil {
			writeErr(w, http.StatusBadGateway, "cannot record this access in the gateway's audit log: "+err.Error())
			return
		}
	}
	rd, done, ok := s.openFor(w, r, id)
	if !ok {
		return
	}
	defer done()
	if d, err := rd.Duration(); err == nil && d.Milliseconds() > out.DurationMS {
		out.DurationMS = d.Milliseconds()
	}
	out.Channel = s.defaultChannel(id, rd)
	if idx, err := rd.Index(); err == nil {
		for _, e := range idx {
			if e.Channel == out.Channel {
				out.Keyframes = append(out.Keyframes, e.Time.Milliseconds())
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if len(q) > 200 {
		writeErr(w, http.StatusBadRequest, "search text is limited to 200 bytes")
		return
	}
	hits, cut := s.cat.search(q)
	out := map[string]any{"hits": hits}
	if cut > 0 {
		unit, n := "MiB", s.cfg.MaxSearchText>>20
		if n == 0 {
			unit, n = "bytes", s.cfg.MaxSearchText
		}
		out["incomplete"] = fmt.Sprintf("search text ran out of memory: the player keeps at most %d %s of it across all recordings, "+
			"so %d of them are searched only in part; open a recording to review it in full, or review fewer at a time", n, unit, cut)
	}
	writeJSON(w, http.StatusOK, out)
}

// msParam reads a non-negative millisecond query parameter.
func msParam(r *http.Request, name string) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(1<<40) {
		return 0, fmt.Errorf("%s must be milliseconds", name)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// channelParam reads the optional terminal channel query parameter; -1
// when it is absent.
func channelParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("channel")
	if v == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > recorder.MaxChannel {
		return 0, errors.New("channel must be a channel number")
	}
	return n, nil
}

// handleTerm answers a window of one terminal channel's records: the
// channel parameter's, by default the first terminal channel.
func (s *Server) handleTerm(w http.ResponseWriter, r *http.Request) {
	from, err1 := msParam(r, "from")
	to, err2 := msParam(r, "to")
	after, err3 := strconv.ParseUint(cmpOr(r.URL.Query().Get("after"), "0"), 10, 64)
	ch, err4 := channelParam(r)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		writeErr(w, http.StatusBadRequest, "from and to must be milliseconds, after a record number, channel a channel number")
		return
	}
	rd, done, ok := s.openFor(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	defer done()
	if ch < 0 {
		ch = s.defaultChannel(r.PathValue("id"), rd)
	}
	writeJSON(w, http.StatusOK, termWindow(rd, ch, from, to, after, r.URL.Query().Get("screen") == "1"))
}

// defaultChannel is the terminal channel a request without one gets: the
// summary's default once the verifying pass has finished, before that the
// first terminal channel found from the start.
func (s *Server) defaultChannel(id string, rd *recorder.Reader) int {
	if v, ok := s.cat.view(id); ok && v.Summary != nil {
		return v.Summary.DefaultChannel
	}
	return rd.FirstTerminal()
}

func cmpOr(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// openFor opens recording id for a request, answering the request itself
// (404 for an unknown id, 422 for one that cannot be read) when it fails.
func (s *Server) openFor(w http.ResponseWriter, r *http.Request, id string) (*recorder.Reader, func(), bool) {
	rd, done, err := s.cat.open(r.Context(), id)
	switch {
	case errors.Is(err, errNotFound):
		writeErr(w, http.StatusNotFound, err.Error())
		return nil, nil, false
	case err != nil:
		writeErr(w, http.StatusUnprocessableEntity, err.Error())
		return nil, nil, false
	}
	return rd, done, true
}
