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
}

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

// cookieName carries the access token after the first visit.
const cookieName = "sg_review"

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
	if !loopback(cfg.Host) {
		return nil, fmt.Errorf("review: %s is not a loopback address; the player serves decrypted recordings and listens on loopback only", cfg.Host)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tok [32]byte
	if _, err := io.ReadFull(cfg.Rand, tok[:]); err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	cat, err := newCatalog(ctx, cfg.Source, cfg.Identities, log)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, cat: cat, token: base64.RawURLEncoding.EncodeToString(tok[:]), log: log, now: cfg.Now}, nil
}

// loopback reports whether hostport names a loopback address.
func loopback(hostport string) bool {
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

// URL is the address to open in a browser; it carries the access token,
// which the page trades for a cookie on first load.
func (s *Server) URL() string { return "http://" + s.cfg.Host + "/?k=" + s.token }

// Close stops the background verification. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(s.cat.close)
	return nil
}

// Handler returns the HTTP handler of the page, its assets and the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(web.FS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /api/recordings", s.authed(s.handleList))
	mux.HandleFunc("GET /api/recordings/{id}", s.authed(s.handleOpen))
	mux.HandleFunc("GET /api/recordings/{id}/term", s.authed(s.handleTerm))
	mux.HandleFunc("GET /api/recordings/{id}/video.webm", s.authed(s.handleVideo))
	mux.HandleFunc("GET /api/recordings/{id}/export", s.authed(s.handleExport))
	mux.HandleFunc("GET /api/recordings/{id}/evidence.zip", s.authed(s.handleEvidence))
	mux.HandleFunc("GET /api/search", s.authed(s.handleSearch))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "not found")
	})
	return s.guard(mux)
}

// guard sets the hardening headers and refuses requests for another host.
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

// authed admits requests carrying the access token's cookie.
func (s *Server) authed(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.token)) != 1 {
			writeErr(w, http.StatusUnauthorized, "open the link the review command printed")
			return
		}
		fn(w, r)
	}
}

// page serves the review page. The first visit carries the token in the
// query; it becomes a cookie and the browser is sent to the bare URL so
// the token leaves the address bar and history.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if k := r.URL.Query().Get("k"); k != "" {
		if subtle.ConstantTimeCompare([]byte(k), []byte(s.token)) != 1 {
			writeErr(w, http.StatusUnauthorized, "this link is not valid for this player; use the one the review command printed")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
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
	Keyframes []int64  `json:"keyframes"` // times of the screen keyframes, ms
	Summary   *Summary `json:"summary,omitempty"`
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
	if idx, err := rd.Index(); err == nil {
		for _, e := range idx {
			out.Keyframes = append(out.Keyframes, e.Time.Milliseconds())
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
	writeJSON(w, http.StatusOK, map[string]any{"hits": s.cat.search(q)})
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

func (s *Server) handleTerm(w http.ResponseWriter, r *http.Request) {
	from, err1 := msParam(r, "from")
	to, err2 := msParam(r, "to")
	after, err3 := strconv.ParseUint(cmpOr(r.URL.Query().Get("after"), "0"), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		writeErr(w, http.StatusBadRequest, "from and to must be milliseconds, after a record number")
		return
	}
	rd, done, ok := s.openFor(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	defer done()
	writeJSON(w, http.StatusOK, termWindow(rd, from, to, after, r.URL.Query().Get("screen") == "1"))
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
