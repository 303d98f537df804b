package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"supportgate/session"
)

// leanConn is the load generator of BenchmarkCreateApproveHTTP's client=lean
// sub-benchmarks: HTTP/1.1 keep-alive requests over one TLS connection,
// written and parsed by hand, the way load generators such as wrk work.
// net/http's client spends about as much CPU per request as the gateway
// does (two goroutines and a cookie jar per connection, header maps); on a
// two-core machine that shares its cores with the gateway, that cost is
// taken from the gateway. The server side is the same in both.
//
// It understands what the gateway answers: Content-Length or chunked
// bodies, Set-Cookie (name and value only, sent back on every request of
// the same leanConn) and Connection: close.
type leanConn struct {
	conn    *tls.Conn
	br      *bufio.Reader
	host    string
	cookies []string // "name=value", in order received
	req     []byte   // reused request buffer
	body    []byte   // reused response body buffer
}

// dialLean connects from src to addr with TLS config tc.
func dialLean(src net.IP, addr string, tc *tls.Config) (*leanConn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
	c, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		return nil, err
	}
	return &leanConn{conn: c, br: bufio.NewReaderSize(c, 8<<10), host: addr}, nil
}

// forget drops the cookies, as a new customer's browser starts without.
func (lc *leanConn) forget() { lc.cookies = lc.cookies[:0] }

// Close closes the connection.
func (lc *leanConn) Close() error { return lc.conn.Close() }

// do sends one request with the extra header lines hdr ("Name: value")
// and body (JSON when not nil), and returns the status and the body,
// which stays valid until the next call.
func (lc *leanConn) do(method, path string, hdr []string, body []byte) (int, []byte, error) {
	b := lc.req[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, lc.host...)
	b = append(b, "\r\nUser-Agent: supportgate-bench\r\n"...)
	for _, h := range hdr {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	for i, c := range lc.cookies {
		if i == 0 {
			b = append(b, "Cookie: "...)
		} else {
			b = append(b, "; "...)
		}
		b = append(b, c...)
		if i == len(lc.cookies)-1 {
			b = append(b, "\r\n"...)
		}
	}
	if body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	lc.req = b
	if _, err := lc.conn.Write(b); err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	status, err := lc.readResponse()
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return status, lc.body, nil
}

var errLeanClosed = errors.New("server closed the connection")

// readResponse reads one response into lc.body.
func (lc *leanConn) readResponse() (int, error) {
	line, err := lc.line()
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closing := -1, false, false
	for {
		line, err := lc.line()
		if err != nil {
			return 0, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqual(name, "Content-Length"):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqual(name, "Transfer-Encoding"):
			chunked = asciiEqual(value, "chunked")
		case asciiEqual(name, "Connection"):
			closing = asciiEqual(value, "close")
		case asciiEqual(name, "Set-Cookie"):
			pair, _, _ := bytes.Cut(value, []byte(";"))
			lc.setCookie(string(pair))
		}
	}
	lc.body = lc.body[:0]
	switch {
	case chunked:
		err = lc.readChunked()
	case length >= 0:
		lc.body = grow(lc.body, length)
		_, err = io.ReadFull(lc.br, lc.body)
	default:
		return 0, errors.New("response without a length")
	}
	if err != nil {
		return 0, err
	}
	if closing {
		return status, errLeanClosed
	}
	return status, nil
}

func (lc *leanConn) readChunked() error {
	for {
		line, err := lc.line()
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseUint(string(size), 16, 31)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// No trailers from the gateway: the blank line ends it.
			_, err := lc.line()
			return err
		}
		off := len(lc.body)
		lc.body = grow(lc.body, off+int(n))
		if _, err := io.ReadFull(lc.br, lc.body[off:]); err != nil {
			return err
		}
		if _, err := lc.line(); err != nil {
			return err
		}
	}
}

// line reads one CRLF-terminated line, without the CRLF.
func (lc *leanConn) line() ([]byte, error) {
	line, err := lc.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			return nil, errLeanClosed
		}
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

func (lc *leanConn) setCookie(pair string) {
	name, _, _ := strings.Cut(pair, "=")
	for i, c := range lc.cookies {
		if strings.HasPrefix(c, name+"=") {
			lc.cookies[i] = pair
			return
		}
	}
	lc.cookies = append(lc.cookies, pair)
}

// grow returns b resized to n bytes, reusing its array when it can.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}

func asciiEqual(b []byte, s string) bool { return strings.EqualFold(string(b), s) }

// jsonField returns the string value of the first "key":"value" in a JSON
// object the gateway wrote (compact, no escapes in the values read here).
func jsonField(body []byte, key string) (string, bool) {
	pat := `"` + key + `":"`
	i := bytes.Index(body, []byte(pat))
	if i < 0 {
		return "", false
	}
	rest := body[i+len(pat):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return string(rest[:j]), true
}

// runLeanWorkers is runWorkers with leanConns: each of benchWorkers
// goroutines keeps its agent's connection (from the agent's address) and
// connects its customers as mode says (connNew or connShared) from
// loopback addresses 127.group.x.y.
func (bg *benchGateway) runLeanWorkers(n int, mode connMode, group byte, agents []*benchAgent,
	iteration func(ac, cc *leanConn, a *benchAgent) error) error {
	addr := bg.srv.Listener.Addr().String()
	tc := &tls.Config{RootCAs: bg.mat.CAPool()}
	var addrs atomic.Uint32
	var next atomic.Int64
	errs := make(chan error, *benchWorkers)
	var wg sync.WaitGroup
	for w := range *benchWorkers {
		wg.Go(func() {
			a, ai := agents[w%len(agents)], w%len(agents)
			var ac, cc *leanConn
			defer func() {
				for _, c := range []*leanConn{ac, cc} {
					if c != nil {
						c.Close()
					}
				}
			}()
			served := 0
			for next.Add(1) <= int64(n) {
				var err error
				if ac == nil {
					if ac, err = dialLean(net.IPv4(127, 1, 0, byte(ai+1)), addr, tc); err != nil {
						errs <- err
						return
					}
				}
				if cc == nil || mode != connShared || served == benchPerConn {
					if cc != nil {
						cc.Close()
					}
					a := addrs.Add(1)
					if cc, err = dialLean(net.IPv4(127, group, byte(a>>8), byte(a)), addr, tc); err != nil {
						errs <- err
						return
					}
					served = 0
				}
				served++
				cc.forget()
				if err := iteration(ac, cc, a); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr(errs)
}

var (
	leanCreateBody  = []byte(`{"customer":"Bench Customer","scopes":["view","chat"],"duration":"30m","reason":"benchmark"}`)
	leanApproveBody = []byte(`{"scopes":["view"]}`)
)

// leanCreateAndApprove is createAndApprove over leanConns: the agent asks
// on ac, the customer opens the link and approves on cc.
func leanCreateAndApprove(ac, cc *leanConn, a *benchAgent) error {
	body, err := leanCall(ac, "POST", "/api/v1/sessions", []string{"Authorization: Bearer " + a.token}, leanCreateBody, 201)
	if err != nil {
		return err
	}
	link, ok := jsonField(body, "consent_url")
	if !ok {
		return fmt.Errorf("create: no consent_url in %s", body)
	}
	tok := link[strings.LastIndexByte(link, '/')+1:]
	if body, err = leanCall(cc, "GET", "/api/v1/consent/"+tok, nil, nil, 200); err != nil {
		return err
	}
	csrf, ok := jsonField(body, "csrf_token")
	if !ok {
		return fmt.Errorf("consent: no csrf_token in %s", body)
	}
	if body, err = leanCall(cc, "POST", "/api/v1/consent/"+tok+"/approve", []string{"X-CSRF-Token: " + csrf}, leanApproveBody, 200); err != nil {
		return err
	}
	if state, _ := jsonField(body, "state"); state != string(session.Active) {
		return fmt.Errorf("approve: got state %q, want active", state)
	}
	return nil
}

func leanHealthz(c *leanConn) error {
	_, err := leanCall(c, "GET", "/healthz", nil, nil, 200)
	return err
}

func leanCall(c *leanConn, method, path string, hdr []string, body []byte, want int) ([]byte, error) {
	status, resp, err := c.do(method, path, hdr, body)
	if err != nil {
		return nil, err
	}
	if status != want {
		return nil, fmt.Errorf("%s %s: got status %d, want %d: %s", method, path, status, want, resp)
	}
	return resp, nil
}
