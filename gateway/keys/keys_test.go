package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/internal/realpeer"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func opts(hosts ...string) Options {
	return Options{Hosts: hosts, Org: "Acme Support", Now: func() time.Time { return t0 }}
}

var privateFiles = []string{CAKeyFile, TLSKeyFile, SSHHostKeyFile, SSHUserCAFile, WireGuardFile, SigningKeyFile}
var publicFiles = []string{CACertFile, TLSCertFile, SSHHostKeyFile + ".pub", SSHUserCAFile + ".pub", WireGuardPub, SigningPubFile}

func TestCreateAndReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	m, created, err := LoadOrCreate(dir, opts("gw.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if !created || !m.TLSReissued {
		t.Errorf("first run: got created=%v TLSReissued=%v, want true true", created, m.TLSReissued)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode: got %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	for _, name := range privateFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: got mode %v (%v), want 0600", name, fi.Mode().Perm(), err)
		}
	}
	for _, name := range publicFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: got mode %v (%v), want 0644", name, fi.Mode().Perm(), err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if got, want := len(entries), len(privateFiles)+len(publicFiles); got != want {
		t.Errorf("files in data dir: got %d, want %d (no temporary files left)", got, want)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if !bytes.Equal(caPEM, m.CAPEM) {
		t.Error("CAPEM differs from ca.pem")
	}
	if got := m.CA.Subject.Organization; len(got) != 1 || got[0] != "Acme Support" {
		t.Errorf("CA organisation: got %v, want [Acme Support]", got)
	}
	if got, want := m.CA.NotAfter.Sub(t0), caValidity; got != want {
		t.Errorf("CA validity: got %v, want %v", got, want)
	}

	m2, created, err := LoadOrCreate(dir, opts("gw.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if created || m2.TLSReissued {
		t.Errorf("reload: got created=%v TLSReissued=%v, want false false", created, m2.TLSReissued)
	}
	same := []struct {
		name string
		a, b []byte
	}{
		{"CA", m.CA.Raw, m2.CA.Raw},
		{"TLS cert", m.TLSCert.Leaf.Raw, m2.TLSCert.Leaf.Raw},
		{"SSH host key", m.SSHHostKey.PublicKey().Marshal(), m2.SSHHostKey.PublicKey().Marshal()},
		{"SSH user CA", m.SSHUserCA.PublicKey().Marshal(), m2.SSHUserCA.PublicKey().Marshal()},
		{"WireGuard private", m.WireGuardPrivate[:], m2.WireGuardPrivate[:]},
		{"WireGuard public", m.WireGuardPublic[:], m2.WireGuardPublic[:]},
		{"signing key", m.SigningKey, m2.SigningKey},
	}
	for _, s := range same {
		if !bytes.Equal(s.a, s.b) {
			t.Errorf("%s changed on reload", s.name)
		}
	}
	if !m.CAKey.Equal(m2.CAKey) {
		t.Error("CA key changed on reload")
	}
	// The keys are distinct from one another.
	if bytes.Equal(m.SSHHostKey.PublicKey().Marshal(), m.SSHUserCA.PublicKey().Marshal()) {
		t.Error("SSH host key and user CA are the same key")
	}
	// Nothing secret in String.
	s := fmt.Sprintf("%v %+v %#v %s", m, m, m, m)
	for _, secret := range [][]byte{m.SigningKey.Seed(), m.WireGuardPrivate[:]} {
		if strings.Contains(s, base64.StdEncoding.EncodeToString(secret)) || strings.Contains(s, fmt.Sprint(secret)) ||
			strings.Contains(s, fmt.Sprintf("%x", secret)) {
			t.Errorf("formatted Material contains a private key: %s", s)
		}
	}
}

func TestTLSCoversHosts(t *testing.T) {
	dir := t.TempDir()
	m, _, err := LoadOrCreate(dir, opts("gw.example.com", "10.1.2.3", "[2001:db8::1]", "0.0.0.0", "GW2.Example.COM."))
	if err != nil {
		t.Fatal(err)
	}
	pool := m.CAPool()
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "gw.example.com", "10.1.2.3", "2001:db8::1", "gw2.example.com"} {
		t.Run(h, func(t *testing.T) {
			_, err := m.TLSCert.Leaf.Verify(x509.VerifyOptions{
				DNSName:     h,
				Roots:       pool,
				CurrentTime: t0,
				KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				t.Errorf("verify for %s: %v", h, err)
			}
		})
	}
	if err := m.TLSCert.Leaf.VerifyHostname("other.example.com"); err == nil {
		t.Error("certificate covers other.example.com, want it not to")
	}
	for _, ip := range m.TLSCert.Leaf.IPAddresses {
		if ip.IsUnspecified() {
			t.Errorf("certificate names unspecified address %v", ip)
		}
	}
	if got, want := m.TLSCert.Leaf.NotAfter.Sub(t0), tlsValidity; got != want {
		t.Errorf("TLS validity: got %v, want %v", got, want)
	}
}

func TestReissueOnNewHost(t *testing.T) {
	dir := t.TempDir()
	m1, _, err := LoadOrCreate(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	m2, created, err := LoadOrCreate(dir, opts("new.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if created || !m2.TLSReissued {
		t.Fatalf("got created=%v TLSReissued=%v, want false true", created, m2.TLSReissued)
	}
	if !bytes.Equal(m1.CA.Raw, m2.CA.Raw) {
		t.Error("CA changed on re-issue, want it kept")
	}
	if err := m2.TLSCert.Leaf.VerifyHostname("new.example.com"); err != nil {
		t.Errorf("re-issued certificate: %v", err)
	}
	if _, err := m2.TLSCert.Leaf.Verify(x509.VerifyOptions{Roots: m1.CAPool(), CurrentTime: t0}); err != nil {
		t.Errorf("re-issued certificate does not chain to the old CA: %v", err)
	}
	// Same hosts again: kept.
	if m3, _, err := LoadOrCreate(dir, opts("new.example.com")); err != nil || m3.TLSReissued {
		t.Errorf("same hosts: got TLSReissued=%v err=%v, want false nil", m3 != nil && m3.TLSReissued, err)
	}
	// Near expiry: re-issued.
	late := opts("new.example.com")
	late.Now = func() time.Time { return t0.Add(tlsValidity - 10*24*time.Hour) }
	if m4, _, err := LoadOrCreate(dir, late); err != nil || !m4.TLSReissued {
		t.Errorf("near expiry: got err=%v, want re-issue", err)
	}
	// CA expired: a clear error, nothing replaced.
	expired := opts()
	expired.Now = func() time.Time { return t0.Add(caValidity + time.Hour) }
	if _, _, err := LoadOrCreate(dir, expired); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired CA: got %v, want an error saying it expired", err)
	}
}

func TestPermissionCheck(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreate(dir, opts()); err != nil {
		t.Fatal(err)
	}
	for _, name := range privateFiles {
		for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
			t.Run(fmt.Sprintf("%s %04o", name, mode), func(t *testing.T) {
				path := filepath.Join(dir, name)
				if err := os.Chmod(path, mode); err != nil {
					t.Fatal(err)
				}
				defer os.Chmod(path, 0o600)
				_, _, err := LoadOrCreate(dir, opts())
				var pe *PermissionError
				if !errors.As(err, &pe) || pe.Path != path {
					t.Fatalf("got %v, want a PermissionError for %s", err, path)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file", err)
				}
				fi, _ := os.Stat(path)
				if fi.Mode().Perm() != mode {
					t.Errorf("mode after load: got %04o, want unchanged %04o", fi.Mode().Perm(), mode)
				}
			})
		}
	}
}

func TestMissingPrivateKey(t *testing.T) {
	for _, name := range []string{CAKeyFile, SSHHostKeyFile, SSHUserCAFile, WireGuardFile, SigningKeyFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, _, err := LoadOrCreate(dir, opts()); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, name))
			_, _, err := LoadOrCreate(dir, opts())
			if err == nil || !strings.Contains(err.Error(), name+" is missing") {
				t.Errorf("got %v, want an error that %s is missing", err, name)
			}
		})
	}
	// Public halves and the TLS pair are recreated from what remains.
	dir := t.TempDir()
	m1, _, err := LoadOrCreate(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(publicFiles, TLSKeyFile) {
		os.Remove(filepath.Join(dir, name))
	}
	m2, _, err := LoadOrCreate(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	if !m1.CAKey.Equal(m2.CAKey) || !m1.SigningKey.Equal(m2.SigningKey) || m1.WireGuardPublic != m2.WireGuardPublic {
		t.Error("keys changed when only public files were removed")
	}
	// A mismatched public file is an error.
	other, _, _ := LoadOrCreate(t.TempDir(), opts())
	os.WriteFile(filepath.Join(dir, SigningPubFile), mustRead(t, filepath.Join(other.Dir, SigningPubFile)), 0o644)
	if _, _, err := LoadOrCreate(dir, opts()); err == nil || !strings.Contains(err.Error(), "does not hold the public key") {
		t.Errorf("mismatched signing.pub: got %v, want an error", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadHosts(t *testing.T) {
	for _, h := range []string{"", "a b", "host:8443", "fe80::1%eth0", "-x.example", "a..b", "*x.example.com", strings.Repeat("a", 64) + ".com"} {
		if _, _, err := LoadOrCreate(t.TempDir(), opts(h)); err == nil {
			t.Errorf("host %q: got nil error, want one", h)
		}
	}
	if _, _, err := LoadOrCreate(t.TempDir(), opts("*.example.com")); err != nil {
		t.Errorf("wildcard host: %v", err)
	}
}

func TestDeterministicRand(t *testing.T) {
	seed := bytes.Repeat([]byte("supportgate-test"), 1000)
	o := opts()
	o.Rand = bytes.NewReader(seed)
	m1, _, err := LoadOrCreate(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	o.Rand = bytes.NewReader(seed)
	m2, _, err := LoadOrCreate(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !m1.CAKey.Equal(m2.CAKey) || !m1.SigningKey.Equal(m2.SigningKey) {
		t.Error("same Rand gave different keys, want the injected reader honoured")
	}
	o.Rand = io.LimitReader(bytes.NewReader(seed), 40)
	if _, _, err := LoadOrCreate(t.TempDir(), o); err == nil {
		t.Error("short Rand: got nil error, want one")
	}
}

func TestTLSHandshake(t *testing.T) {
	m, _, err := LoadOrCreate(t.TempDir(), Options{Org: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err == nil {
					c.Write([]byte("hello"))
				}
			})
		}
	})
	tests := []struct {
		name   string
		config *tls.Config
		ok     bool
	}{
		{"127.0.0.1", &tls.Config{RootCAs: m.CAPool(), ServerName: "127.0.0.1"}, true},
		{"localhost", &tls.Config{RootCAs: m.CAPool(), ServerName: "localhost"}, true},
		{"untrusted CA", &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"}, false},
		{"wrong name", &tls.Config{RootCAs: m.CAPool(), ServerName: "other.example.com"}, false},
		{"TLS 1.1", &tls.Config{RootCAs: m.CAPool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d := tls.Dialer{Config: tt.config}
			c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if !tt.ok {
				if err == nil {
					c.Close()
					t.Fatal("handshake succeeded, want it refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
				t.Errorf("read: got %q, %v; want hello", buf, err)
			}
		})
	}
}

func TestSSHKeygenInterop(t *testing.T) {
	keygen := realpeer.Require(t, "ssh-keygen")
	dir := t.TempDir()
	m, _, err := LoadOrCreate(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	for name, signer := range map[string]ssh.Signer{SSHHostKeyFile: m.SSHHostKey, SSHUserCAFile: m.SSHUserCA} {
		out, err := exec.Command(keygen, "-y", "-f", filepath.Join(dir, name)).Output()
		if err != nil {
			t.Fatalf("ssh-keygen -y %s: %v", name, err)
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(out)
		if err != nil || !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
			t.Errorf("%s: ssh-keygen derives %s, want %s", name, bytes.TrimSpace(out), ssh.MarshalAuthorizedKey(signer.PublicKey()))
		}
	}
}

func TestWireGuardInterop(t *testing.T) {
	wg := realpeer.Require(t, "wg")
	dir := t.TempDir()
	m, _, err := LoadOrCreate(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(wg, "pubkey")
	cmd.Stdin = bytes.NewReader(mustRead(t, filepath.Join(dir, WireGuardFile)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), base64.StdEncoding.EncodeToString(m.WireGuardPublic[:]); got != want {
		t.Errorf("wg pubkey: got %s, want %s", got, want)
	}
}

func TestSigningKey(t *testing.T) {
	dir := t.TempDir()
	m, _, err := LoadOrCreate(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParseSigningPublicKey(mustRead(t, filepath.Join(dir, SigningPubFile)))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("checkpoint 42")
	if !ed25519.Verify(pub, msg, ed25519.Sign(m.SigningKey, msg)) {
		t.Error("signature does not verify with signing.pub")
	}
	if m.WireGuardPrivate[0]&7 != 0 || m.WireGuardPrivate[31]&0xc0 != 0x40 {
		t.Errorf("WireGuard key not clamped: %x", m.WireGuardPrivate)
	}
}
