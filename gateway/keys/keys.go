// Package keys owns the gateway's key material in its data directory: the
// local CA and TLS server certificate, the SSH host key and SSH user CA, the
// WireGuard key and the signing key for recordings and the audit log. The
// first run creates them; later runs load them.
//
// Layout of DIR (private files 0600, public files 0644, DIR 0700 when created):
//
//	ca.pem ca.key                              local CA (ECDSA P-256, 10 years)
//	tls.pem tls.key                            TLS server certificate (ECDSA P-256, 1 year)
//	ssh_host_ed25519_key ssh_host_ed25519_key.pub   SSH host key (OpenSSH format)
//	ssh_user_ca ssh_user_ca.pub                SSH user certificate authority
//	wireguard.key wireguard.pub                WireGuard key (base64, as wg(8) writes it)
//	signing.key signing.pub                    Ed25519 signing key (PKCS#8 / PKIX PEM)
//
// Every write is atomic (temporary file, fsync, rename). A private key file
// that group or others can read is refused with a *PermissionError and left
// as it is. A missing private key whose public half is present is an error
// rather than a silent replacement, because recordings, audit checkpoints and
// clients already trust the old one. Two processes must not run LoadOrCreate
// on one directory at the same time.
package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
)

// File names inside the data directory.
const (
	CACertFile     = "ca.pem"
	CAKeyFile      = "ca.key"
	TLSCertFile    = "tls.pem"
	TLSKeyFile     = "tls.key"
	SSHHostKeyFile = "ssh_host_ed25519_key"
	SSHUserCAFile  = "ssh_user_ca"
	WireGuardFile  = "wireguard.key"
	WireGuardPub   = "wireguard.pub"
	SigningKeyFile = "signing.key"
	SigningPubFile = "signing.pub"
)

// Options tune LoadOrCreate. The zero value is usable.
type Options struct {
	// Hosts are extra DNS names and IP addresses the TLS certificate must
	// cover besides localhost, 127.0.0.1 and ::1, such as the host of
	// --public-url. Brackets around IPv6 addresses are removed; unspecified
	// addresses (0.0.0.0, ::) are ignored.
	Hosts []string
	// Org is the organisation name in the certificates' subjects.
	Org string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand is the source of key material and serial numbers (default
	// crypto/rand.Reader). Keys are derived from it directly, so an injected
	// reader is honoured even where crypto/* ignores its rand argument.
	Rand io.Reader
}

// Material is the loaded key material. Its String method names the keys
// without printing any secret, so it is safe to log.
type Material struct {
	// Dir is the data directory the material lives in.
	Dir string

	// CA is the local certificate authority; CAKey its private key and
	// CAPEM the PEM of CA, as in DIR/ca.pem, for clients to trust.
	CA    *x509.Certificate
	CAKey *ecdsa.PrivateKey
	CAPEM []byte

	// TLSCert is the server certificate, signed by CA, with Leaf set.
	TLSCert tls.Certificate
	// TLSReissued is true when this LoadOrCreate issued a new TLS
	// certificate to replace one that was missing, expiring, or did not
	// cover the requested hosts.
	TLSReissued bool

	// SSHHostKey is the bastion's host key; SSHUserCA signs the short-lived
	// user certificates. Both are Ed25519.
	SSHHostKey ssh.Signer
	SSHUserCA  ssh.Signer

	// WireGuardPrivate is the clamped Curve25519 private key and
	// WireGuardPublic its public key.
	WireGuardPrivate [32]byte
	WireGuardPublic  [32]byte

	// SigningKey signs recordings and audit checkpoints; SigningPublic
	// verifies them.
	SigningKey    ed25519.PrivateKey
	SigningPublic ed25519.PublicKey
}

// PermissionError reports a private key file that group or others may read.
type PermissionError struct {
	Path string
	Mode fs.FileMode
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("keys: %s has mode %04o, readable by group or others; run chmod 600 on it", e.Path, e.Mode.Perm())
}

// LoadOrCreate loads the key material in dir, creating dir (0700) and any
// key that does not exist yet. created is true when dir held no key material
// before the call, that is on first run. The TLS certificate is re-issued
// (keeping the CA) when it is missing, does not chain to the CA, expires
// within 30 days, or does not cover localhost, 127.0.0.1, ::1 and opt.Hosts.
func LoadOrCreate(dir string, opt Options) (m *Material, created bool, err error) {
	if dir == "" {
		return nil, false, errors.New("keys: data directory is required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	hosts, err := normalizeHosts(opt.Hosts)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("keys: create data directory: %w", err)
	}
	fresh, err := noneExist(dir, CACertFile, CAKeyFile, TLSCertFile, TLSKeyFile, SSHHostKeyFile, SSHUserCAFile,
		WireGuardFile, SigningKeyFile, SigningPubFile)
	if err != nil {
		return nil, false, err
	}
	m = &Material{Dir: dir}
	if err := m.loadOrCreateCA(opt); err != nil {
		return nil, false, err
	}
	if err := m.loadOrIssueTLS(opt, hosts); err != nil {
		return nil, false, err
	}
	if m.SSHHostKey, err = loadOrCreateSSH(dir, SSHHostKeyFile, "supportgate host key", opt.Rand); err != nil {
		return nil, false, err
	}
	if m.SSHUserCA, err = loadOrCreateSSH(dir, SSHUserCAFile, "supportgate user CA", opt.Rand); err != nil {
		return nil, false, err
	}
	if err := m.loadOrCreateWireGuard(opt.Rand); err != nil {
		return nil, false, err
	}
	if err := m.loadOrCreateSigning(opt.Rand); err != nil {
		return nil, false, err
	}
	return m, fresh, nil
}

// String describes m without secrets: fingerprints and public keys only.
func (m *Material) String() string {
	if m == nil {
		return "keys.Material(nil)"
	}
	return fmt.Sprintf("keys.Material{dir=%s ca=%q tls=%v ssh_host=%s ssh_user_ca=%s}",
		m.Dir, m.CA.Subject.CommonName, m.TLSCert.Leaf.DNSNames,
		ssh.FingerprintSHA256(m.SSHHostKey.PublicKey()), ssh.FingerprintSHA256(m.SSHUserCA.PublicKey()))
}

// GoString is String, so that %#v does not print private keys either.
func (m *Material) GoString() string { return m.String() }

// TLSConfig returns a new server configuration with the gateway's
// certificate and TLS 1.2 as the minimum version.
func (m *Material) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{m.TLSCert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// CAPool returns a new pool holding only the gateway's CA, for clients.
func (m *Material) CAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(m.CA)
	return pool
}

func noneExist(dir string, names ...string) (bool, error) {
	for _, name := range names {
		_, err := os.Lstat(filepath.Join(dir, name))
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("keys: %w", err)
		}
	}
	return true, nil
}
