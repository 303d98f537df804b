package detect_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"supportgate/gateway/detect"
)

// selfSigned returns a TLS certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// TestSyslogTLS: alerts reach a collector over TLS (RFC 5425, octet
// counted), and a collector the configured roots do not trust gets
// nothing.
func TestSyslogTLS(t *testing.T) {
	noLeak(t)
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 4)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				readOctetCounted(c, msgs)
			})
		}
	})
	defer wg.Wait()
	defer ln.Close()

	s, err := detect.NewSyslog(detect.SyslogConfig{Network: "tls", Addr: ln.Addr().String(), Hostname: "gw1",
		TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(testAlert)
	select {
	case got := <-msgs:
		if got != wantSyslog {
			t.Errorf("message:\n got %q\nwant %q", got, wantSyslog)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
	s.Close()

	// System roots do not know this collector: the alert fails, nothing
	// is sent in the clear.
	untrusted, err := detect.NewSyslog(detect.SyslogConfig{Network: "tls", Addr: ln.Addr().String(), Hostname: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	untrusted.Send(testAlert)
	waitFor(t, "failure", func() bool { return untrusted.Stats().Failed == 1 })
	untrusted.Close()
	select {
	case got := <-msgs:
		t.Errorf("an untrusted collector got %q", got)
	default:
	}
}

// TestNoPlaintextOffMachine: syslog over udp or tcp and webhooks over
// http are refused unless the other end is this machine.
func TestNoPlaintextOffMachine(t *testing.T) {
	secret := []byte("0123456789abcdef")
	for _, tc := range []struct {
		network, addr string
		ok            bool
	}{
		{"udp", "192.0.2.1:514", false},
		{"tcp", "syslog.example.com:601", false},
		{"udp", "127.0.0.1:514", true},
		{"tcp", "[::1]:601", true},
		{"tcp", "localhost:601", true},
		{"tls", "192.0.2.1:6514", true},
	} {
		s, err := detect.NewSyslog(detect.SyslogConfig{Network: tc.network, Addr: tc.addr})
		if (err == nil) != tc.ok {
			t.Errorf("syslog %s %s: err %v, want ok %v", tc.network, tc.addr, err, tc.ok)
		}
		if s != nil {
			s.Close()
		}
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://192.0.2.1/hook", false},
		{"http://hooks.example.com/services/x", false},
		{"https://hooks.example.com/services/x", true},
		{"http://127.0.0.1:8080/hook", true},
		{"http://localhost/hook", true},
		{"http://[::1]/hook", true},
	} {
		w, err := detect.NewWebhook(detect.WebhookConfig{URL: tc.url, Secret: secret})
		if (err == nil) != tc.ok {
			t.Errorf("webhook %s: err %v, want ok %v", tc.url, err, tc.ok)
		}
		if w != nil {
			w.Close()
		}
	}
}

// TestWebhookNoRedirect: a receiver that redirects does not get the alert
// sent on, where it could go anywhere, http:// off the machine included;
// the delivery fails.
func TestWebhookNoRedirect(t *testing.T) {
	noLeak(t)
	var got atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer plain.Close()
	recv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer recv.Close()
	wh, err := detect.NewWebhook(detect.WebhookConfig{URL: recv.URL + "/hook", Secret: []byte("0123456789abcdef"),
		Client: recv.Client(), Backoff: time.Millisecond, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	wh.Send(testAlert)
	waitFor(t, "failure", func() bool { return wh.Stats().Failed == 1 })
	wh.Close()
	if n := got.Load(); n != 0 {
		t.Errorf("the redirect target got %d deliveries, want none", n)
	}
}
