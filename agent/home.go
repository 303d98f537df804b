package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Home is the client's state directory ($SUPPORTGATE_HOME, default the
// user config dir's supportgate folder):
//
//	config.json            gateway URL, user, token and its expiry (0600)
//	ca.pem                 the gateway CA the client trusts
//	id_ed25519[.pub]       the SSH key the login certificate is issued for
//	id_ed25519-cert.pub    the short-lived SSH user certificate
//	known_hosts            the gateway's SSH host key
//	evidence-ed25519.pem   the reviewer's key signing evidence-bundle manifests
type Home struct {
	Dir string
}

// Config is what login stores.
type Config struct {
	Gateway   string    `json:"gateway"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	SSHPort   int       `json:"ssh_port,omitempty"` // the gateway's SSH bastion port
}

// DefaultHome resolves the home directory from SUPPORTGATE_HOME or the
// user config dir.
func DefaultHome(getenv func(string) string) (Home, error) {
	if d := getenv("SUPPORTGATE_HOME"); d != "" {
		return Home{Dir: d}, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return Home{}, fmt.Errorf("finding config dir (set SUPPORTGATE_HOME): %w", err)
	}
	return Home{Dir: filepath.Join(d, "supportgate")}, nil
}

// Path returns a file's path in the home directory.
func (h Home) Path(name string) string { return filepath.Join(h.Dir, name) }

// ErrNotLoggedIn means there is no stored login.
var ErrNotLoggedIn = errors.New("not logged in; run supportgate login")

// Load reads the stored login.
func (h Home) Load() (*Config, error) {
	b, err := os.ReadFile(h.Path("config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotLoggedIn
	}
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading %s: %w", h.Path("config.json"), err)
	}
	return &c, nil
}

// Client returns an API client for the stored login, refusing an expired one.
func (h Home) Client(now time.Time) (*Client, *Config, error) {
	c, err := h.Load()
	if err != nil {
		return nil, nil, err
	}
	if c.Token == "" || !now.Before(c.ExpiresAt) {
		return nil, nil, errors.New("login expired; run supportgate login")
	}
	ca, err := os.ReadFile(h.Path("ca.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("reading gateway CA: %w", err)
	}
	cl, err := NewClient(c.Gateway, ca)
	if err != nil {
		return nil, nil, err
	}
	cl.Token = c.Token
	return cl, c, nil
}

// write stores a file atomically with the mode.
func (h Home) write(name string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(h.Dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), h.Path(name))
}

// SSHKey returns the login's SSH public key in authorized_keys form,
// creating the key pair on first use.
func (h Home) SSHKey() (string, error) {
	priv := h.Path("id_ed25519")
	if b, err := os.ReadFile(priv); err == nil {
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", priv, err)
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(key, "supportgate")
	if err != nil {
		return "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if err := h.write("id_ed25519", pemEncode(block), 0o600); err != nil {
		return "", err
	}
	if err := h.write("id_ed25519.pub", []byte(line+"\n"), 0o644); err != nil {
		return "", err
	}
	return line, nil
}

// EvidenceKey returns the reviewer's Ed25519 key that signs the manifests
// of evidence bundles, creating it on first use (PKCS#8 PEM, mode 0600).
func (h Home) EvidenceKey() (ed25519.PrivateKey, error) {
	path := h.Path("evidence-ed25519.pem")
	if b, err := os.ReadFile(path); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("reading %s: not a PEM private key", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		key, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("reading %s: not an Ed25519 key", path)
		}
		return key, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := h.write("evidence-ed25519.pem", pemEncode(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

// SaveLogin stores the result of a login: config, CA, certificate and the
// gateway's host key.
func (h Home) SaveLogin(gateway string, caPEM []byte, r *LoginResponse) error {
	c := Config{Gateway: gateway, User: r.User, Role: r.Role, Token: r.Token, ExpiresAt: r.ExpiresAt, SSHPort: r.SSHPort}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := h.write("config.json", append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := h.write("ca.pem", caPEM, 0o644); err != nil {
		return err
	}
	if r.SSHCertificate != "" {
		if err := h.write("id_ed25519-cert.pub", []byte(r.SSHCertificate+"\n"), 0o644); err != nil {
			return err
		}
	}
	if r.SSHHostKey != "" {
		u, err := url.Parse(gateway)
		if err != nil {
			return err
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			host = "[" + host + "]"
		}
		line := fmt.Sprintf("%s,[%s]:* %s\n", host, u.Hostname(), r.SSHHostKey)
		if err := h.write("known_hosts", []byte(line), 0o644); err != nil {
			return err
		}
	}
	return nil
}
