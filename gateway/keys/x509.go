package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	caValidity  = 10 * 365 * 24 * time.Hour
	tlsValidity = 365 * 24 * time.Hour
	tlsRenewal  = 30 * 24 * time.Hour // re-issue when less than this is left
	backdate    = time.Hour           // tolerate clients whose clocks lag
)

// defaultHosts are always in the TLS certificate.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// host is one name the TLS certificate covers: an IP or a DNS name.
type host struct {
	ip  netip.Addr // valid for an IP address
	dns string
}

func (h host) String() string {
	if h.ip.IsValid() {
		return h.ip.String()
	}
	return h.dns
}

func normalizeHosts(extra []string) ([]host, error) {
	var out []host
	for _, s := range append(slices.Clone(defaultHosts), extra...) {
		s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "["), "]")
		var h host
		if ip, err := netip.ParseAddr(s); err == nil {
			if ip.Zone() != "" {
				return nil, fmt.Errorf("keys: host %q: a zoned address cannot be in a certificate", s)
			}
			if ip.IsUnspecified() {
				continue
			}
			h.ip = ip.Unmap()
		} else {
			name := strings.TrimSuffix(strings.ToLower(s), ".")
			if !validDNSName(name) {
				return nil, fmt.Errorf("keys: host %q is neither an IP address nor a DNS name", s)
			}
			h.dns = name
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || (c == '*' && label == "*" && i == 0)) {
				return false
			}
		}
	}
	return true
}

// covers reports whether cert names every host exactly.
func covers(cert *x509.Certificate, hosts []host) bool {
	for _, h := range hosts {
		if h.ip.IsValid() {
			if !slices.ContainsFunc(cert.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.IP(h.ip.AsSlice())) }) {
				return false
			}
		} else if !slices.Contains(cert.DNSNames, h.dns) {
			return false
		}
	}
	return true
}

func newECDSAKey(r io.Reader) (*ecdsa.PrivateKey, error) {
	var b [32]byte
	for range 64 { // rejection sampling; one retry in 2^32
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("keys: generate ECDSA key: %w", err)
		}
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b[:]); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("keys: generate ECDSA key: random source returns no valid scalar")
}

func newSerial(r io.Reader) (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("keys: certificate serial: %w", err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // positive and never zero
	return new(big.Int).SetBytes(b[:]), nil
}

func encodePKCS8(key any) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func decodePEM(path string, data []byte, typ string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != typ || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("keys: %s: want exactly one PEM block of type %q", path, typ)
	}
	return block.Bytes, nil
}

func parseECDSAKey(path string, data []byte) (*ecdsa.PrivateKey, error) {
	der, err := decodePEM(path, data, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("keys: %s: want an ECDSA P-256 key", path)
	}
	return ek, nil
}

func parseCert(path string, data []byte) (*x509.Certificate, error) {
	der, err := decodePEM(path, data, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return c, nil
}

func (m *Material) loadOrCreateCA(opt Options) error {
	keyPath, certPath := filepath.Join(m.Dir, CAKeyFile), filepath.Join(m.Dir, CACertFile)
	keyPEM, err := readPrivate(keyPath)
	if err != nil {
		return err
	}
	certPEM, err := readPublic(certPath)
	if err != nil {
		return err
	}
	if keyPEM == nil && certPEM != nil {
		return missingPrivate(m.Dir, CAKeyFile, CACertFile)
	}
	if keyPEM == nil {
		key, err := newECDSAKey(opt.Rand)
		if err != nil {
			return err
		}
		if keyPEM, err = encodePKCS8(key); err != nil {
			return err
		}
		if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
			return err
		}
	}
	if m.CAKey, err = parseECDSAKey(keyPath, keyPEM); err != nil {
		return err
	}
	if certPEM == nil {
		// First run, or a crash between writing ca.key and ca.pem.
		if certPEM, err = selfSignCA(m.CAKey, opt); err != nil {
			return err
		}
		if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
			return err
		}
	}
	if m.CA, err = parseCert(certPath, certPEM); err != nil {
		return err
	}
	if !m.CA.IsCA || !m.CAKey.PublicKey.Equal(m.CA.PublicKey) {
		return fmt.Errorf("keys: %s is not the CA certificate of %s", certPath, keyPath)
	}
	if now := opt.Now(); now.After(m.CA.NotAfter) {
		return fmt.Errorf("keys: CA certificate %s expired on %s; move ca.pem and ca.key aside to create a new CA (clients must then trust the new ca.pem)",
			certPath, m.CA.NotAfter.Format(time.DateOnly))
	}
	m.CAPEM = certPEM
	return nil
}

func selfSignCA(key *ecdsa.PrivateKey, opt Options) ([]byte, error) {
	serial, err := newSerial(opt.Rand)
	if err != nil {
		return nil, err
	}
	now := opt.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject("supportgate local CA", opt.Org),
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(opt.Rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("keys: create CA certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func subject(cn, org string) pkix.Name {
	n := pkix.Name{CommonName: cn}
	if org != "" {
		n.Organization = []string{org}
	}
	return n
}

func (m *Material) loadOrIssueTLS(opt Options, hosts []host) error {
	keyPath, certPath := filepath.Join(m.Dir, TLSKeyFile), filepath.Join(m.Dir, TLSCertFile)
	keyPEM, err := readPrivate(keyPath)
	if err != nil {
		return err
	}
	certPEM, err := readPublic(certPath)
	if err != nil {
		return err
	}
	if keyPEM != nil && certPEM != nil {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err == nil && cert.Leaf != nil && m.usableTLS(cert.Leaf, hosts, opt.Now()) {
			m.TLSCert = cert
			return nil
		}
	}
	// Missing, unreadable, expiring, not from this CA, or not covering a
	// requested host: issue a new one. The TLS certificate holds no state
	// anyone depends on except trust in the CA, which is kept.
	key, err := newECDSAKey(opt.Rand)
	if err != nil {
		return err
	}
	serial, err := newSerial(opt.Rand)
	if err != nil {
		return err
	}
	now := opt.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject("supportgate", opt.Org),
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(tlsValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(m.CA.NotAfter) {
		tmpl.NotAfter = m.CA.NotAfter
	}
	for _, h := range hosts {
		if h.ip.IsValid() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(h.ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h.dns)
		}
	}
	der, err := x509.CreateCertificate(opt.Rand, tmpl, m.CA, &key.PublicKey, m.CAKey)
	if err != nil {
		return fmt.Errorf("keys: issue TLS certificate: %w", err)
	}
	if keyPEM, err = encodePKCS8(key); err != nil {
		return err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key first: a crash in between leaves a mismatched pair, which the next
	// run re-issues.
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
		return err
	}
	if m.TLSCert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("keys: new TLS certificate: %w", err)
	}
	m.TLSReissued = true
	return nil
}

func (m *Material) usableTLS(leaf *x509.Certificate, hosts []host, now time.Time) bool {
	return leaf.CheckSignatureFrom(m.CA) == nil &&
		!now.Before(leaf.NotBefore) &&
		now.Add(tlsRenewal).Before(leaf.NotAfter) &&
		covers(leaf, hosts)
}
