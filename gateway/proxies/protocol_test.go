package proxies

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// v2 builds a v2 header: version and command byte, family byte, body.
func v2(verCmd, fam byte, body []byte) string {
	var b bytes.Buffer
	b.Write(v2Signature)
	b.WriteByte(verCmd)
	b.WriteByte(fam)
	binary.Write(&b, binary.BigEndian, uint16(len(body)))
	b.Write(body)
	return b.String()
}

func v2TCP4(src, dst string, sport, dport uint16, tlvs []byte) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	return append(b, tlvs...)
}

func v2TCP6(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

// TestReadHeader reads PROXY protocol headers followed by the client's
// first bytes, which must be left unread.
func TestReadHeader(t *testing.T) {
	const after = "\x16\x03\x01 client hello"
	tlv := []byte{0x04, 0x00, 0x03, 'a', 'b', 'c'} // PP2_TYPE_NOOP
	for _, c := range []struct {
		name, in string
		want     string // the source; "" a LOCAL or UNKNOWN header; "!" and part of the error
	}{
		{"v1 TCP4", "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n", "203.0.113.7:51234"},
		{"v1 TCP6", "PROXY TCP6 2001:db8::7 2001:db8::1 51234 443\r\n", "[2001:db8::7]:51234"},
		{"v1 UNKNOWN", "PROXY UNKNOWN\r\n", ""},
		{"v1 UNKNOWN with addresses", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", ""},
		{"v1 longest", "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
		{"v1 at the bound", "PROXY UNKNOWN " + strings.Repeat("x", maxV1Bytes-16) + "\r\n", ""},
		{"v1 too long", "PROXY UNKNOWN " + strings.Repeat("x", maxV1Bytes-15) + "\r\n", "!longer than 107"},
		{"v1 no CR", "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\n", "!CRLF"},
		{"v1 family mismatch", "PROXY TCP4 2001:db8::7 10.0.0.1 51234 443\r\n", "!malformed"},
		{"v1 mapped in TCP4", "PROXY TCP4 ::ffff:203.0.113.7 10.0.0.1 51234 443\r\n", "!malformed"},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 2001:db8::1 51234 443\r\n", "!malformed"},
		{"v1 port leading zero", "PROXY TCP4 203.0.113.7 10.0.0.1 051234 443\r\n", "!malformed"},
		{"v1 port sign", "PROXY TCP4 203.0.113.7 10.0.0.1 +5123 443\r\n", "!malformed"},
		{"v1 port too big", "PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n", "!malformed"},
		{"v1 double space", "PROXY TCP4  203.0.113.7 10.0.0.1 51234 443\r\n", "!malformed"},
		{"v1 UDP", "PROXY UDP4 203.0.113.7 10.0.0.1 51234 443\r\n", "!malformed"},
		{"v1 truncated", "PROXY TCP4 203.0.113.7", "!EOF"},
		{"not PROXY", "PRI * HTTP/2.0\r\n", "!no PROXY protocol header"},
		{"v2 TCP4", v2(0x21, 0x11, v2TCP4("203.0.113.7", "10.0.0.1", 51234, 443, nil)), "203.0.113.7:51234"},
		{"v2 TCP4 with TLVs", v2(0x21, 0x11, v2TCP4("203.0.113.7", "10.0.0.1", 51234, 443, tlv)), "203.0.113.7:51234"},
		{"v2 TCP6", v2(0x21, 0x21, v2TCP6("2001:db8::7", "2001:db8::1", 51234, 443)), "[2001:db8::7]:51234"},
		{"v2 TCP6 mapped", v2(0x21, 0x21, v2TCP6("::ffff:203.0.113.7", "::ffff:10.0.0.1", 51234, 443)), "203.0.113.7:51234"},
		{"v2 LOCAL", v2(0x20, 0x00, nil), ""},
		{"v2 LOCAL with addresses", v2(0x20, 0x11, v2TCP4("10.0.0.9", "10.0.0.1", 1, 443, nil)), ""},
		{"v2 UNSPEC", v2(0x21, 0x00, nil), ""},
		{"v2 UDP4", v2(0x21, 0x12, v2TCP4("203.0.113.7", "10.0.0.1", 51234, 443, nil)), ""},
		{"v2 unix", v2(0x21, 0x31, make([]byte, 216)), ""},
		{"v2 version 1", v2(0x11, 0x11, v2TCP4("203.0.113.7", "10.0.0.1", 51234, 443, nil)), "!version 1"},
		{"v2 command 2", v2(0x22, 0x11, v2TCP4("203.0.113.7", "10.0.0.1", 51234, 443, nil)), "!command 2"},
		{"v2 short IPv4", v2(0x21, 0x11, make([]byte, 11)), "!IPv4 addresses in 11 bytes"},
		{"v2 short IPv6", v2(0x21, 0x21, make([]byte, 35)), "!IPv6 addresses in 35 bytes"},
		{"v2 too long", v2(0x21, 0x11, make([]byte, MaxV2Bytes+1)), "!at most"},
		{"v2 at the bound", v2(0x21, 0x11, v2TCP4("203.0.113.7", "10.0.0.1", 51234, 443, make([]byte, MaxV2Bytes-12))), "203.0.113.7:51234"},
		{"v2 bad signature", "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00", "!no PROXY protocol header"},
		{"v2 truncated", v2(0x21, 0x11, v2TCP4("203.0.113.7", "10.0.0.1", 51234, 443, make([]byte, 100)))[:40], "!EOF"},
		{"TLS", "", "!no PROXY protocol header"},
		{"HTTP", "GET / HTTP/1.1\r\n", "!no PROXY protocol header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(c.in + after))
			got, err := readHeader(r)
			if want, ok := strings.CutPrefix(c.want, "!"); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v", err)
			}
			if (c.want == "" && got.IsValid()) || (c.want != "" && got.String() != c.want) {
				t.Fatalf("got %v, want %q", got, c.want)
			}
			if rest, _ := io.ReadAll(r); string(rest) != after {
				t.Fatalf("left %q unread, want %q", rest, after)
			}
		})
	}
}

// FuzzReadHeader: readHeader never panics, never reads past the bounds,
// and an address it returns is a plain one.
func FuzzReadHeader(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n", "PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n",
		"PROXY UNKNOWN\r\n", "PROXY TCP4 1.2.3.4", "\x16\x03\x01",
		v2(0x21, 0x11, v2TCP4("203.0.113.7", "10.0.0.1", 51234, 443, []byte{4, 0, 1, 0})),
		v2(0x21, 0x21, v2TCP6("2001:db8::7", "2001:db8::1", 51234, 443)), v2(0x20, 0, nil),
		v2(0x21, 0x11, nil), v2(0x21, 0x31, make([]byte, 216)),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src := bytes.NewReader(in)
		r := bufio.NewReader(src)
		got, err := readHeader(r)
		used := len(in) - src.Len() - r.Buffered()
		if used > 16+MaxV2Bytes {
			t.Fatalf("read %d bytes of a header", used)
		}
		if err != nil {
			if got.IsValid() {
				t.Fatalf("got %v and %v", got, err)
			}
			return
		}
		if a := got.Addr(); got.IsValid() && (a.Zone() != "" || a.Is4In6()) {
			t.Fatalf("got %v, want a plain address", got)
		}
		if in[0] == 'P' && used > maxV1Bytes {
			t.Fatalf("read %d bytes of a v1 header", used)
		}
	})
}

// TestProtocolListener: over real loopback TCP, a connection from a load
// balancer reports the client its header names and reads on after it; one
// from a load balancer without a header is closed unread; one from
// another peer is untouched, PROXY-looking bytes and all.
func TestProtocolListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbs, err := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	if err != nil {
		t.Fatal(err)
	}
	ln := ProtocolListener(inner, lbs, 2*time.Second)
	defer ln.Close()

	// serve accepts one connection and reports its RemoteAddr and first
	// line, or the read's error.
	type served struct {
		remote, line string
		err          error
	}
	serve := func() <-chan served {
		ch := make(chan served, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				ch <- served{err: err}
				return
			}
			defer c.Close()
			remote := c.RemoteAddr().String()
			line, err := bufio.NewReader(c).ReadString('\n')
			ch <- served{remote, line, err}
		}()
		return ch
	}
	dial := func(from, send string) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
	}

	ch := serve()
	dial("127.0.0.1", "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\nhello\n")
	if s := <-ch; s.err != nil || s.remote != "203.0.113.7:51234" || s.line != "hello\n" {
		t.Errorf("load balancer with a header: got %+v, want 203.0.113.7:51234 and hello", s)
	}

	ch = serve()
	dial("127.0.0.1", v2(0x20, 0, nil)+"health\n")
	if s := <-ch; s.err != nil || !strings.HasPrefix(s.remote, "127.0.0.1:") || s.line != "health\n" {
		t.Errorf("load balancer's LOCAL connection: got %+v, want itself and health", s)
	}

	ch = serve()
	dial("127.0.0.1", "\x16\x03\x01 a TLS client hello\n")
	if s := <-ch; !errors.Is(s.err, errNoHeader) || s.line != "" || !strings.HasPrefix(s.remote, "127.0.0.1:") {
		t.Errorf("load balancer without a header: got %+v, want it refused unread", s)
	}

	ch = serve()
	dial("127.0.0.2", "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n")
	if s := <-ch; s.err != nil || !strings.HasPrefix(s.remote, "127.0.0.2:") || !strings.HasPrefix(s.line, "PROXY TCP4") {
		t.Errorf("other peer: got %+v, want itself and its bytes untouched", s)
	}
}

// TestProtocolListenerTimeout: a load balancer that connects and sends
// nothing is refused after the timeout, and holds up no other connection
// meanwhile.
func TestProtocolListenerTimeout(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbs, err := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	if err != nil {
		t.Fatal(err)
	}
	ln := ProtocolListener(inner, lbs, 300*time.Millisecond)
	defer ln.Close()

	silent, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c1, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c1.Read(make([]byte, 1))
		done <- err
	}()

	// Meanwhile another connection is accepted and served.
	talker, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	io.WriteString(talker, "PROXY TCP4 203.0.113.8 10.0.0.1 1 443\r\n")
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := c2.RemoteAddr().String(); got != "203.0.113.8:1" {
		t.Errorf("second connection: got %s, want 203.0.113.8:1", got)
	}
	if err := <-done; err == nil {
		t.Error("silent load balancer: got a read, want the connection refused")
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("silent load balancer refused after %v, before the timeout", waited)
	}
}
