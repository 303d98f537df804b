package wghub_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/ssh"

	"supportgate/gateway/wghub"
	"supportgate/session"
)

// fakeSessions is a session broker of active sessions whose scopes and
// contexts the test controls.
type fakeSessions struct {
	mu sync.Mutex // guards m
	m  map[string]*fakeSession
}

type fakeSession struct {
	agent  string
	scopes session.Scopes
	ctx    context.Context
	cancel context.CancelFunc
}

func newFakeSessions() *fakeSessions { return &fakeSessions{m: map[string]*fakeSession{}} }

func (f *fakeSessions) add(id, agent, scopes string) *fakeSession {
	sc, err := session.ParseScopes(scopes)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &fakeSession{agent: agent, scopes: sc, ctx: ctx, cancel: cancel}
	f.mu.Lock()
	f.m[id] = s
	f.mu.Unlock()
	return s
}

func (f *fakeSessions) get(id string) (*fakeSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.m[id]
	if s == nil {
		return nil, session.ErrNotFound
	}
	if s.ctx.Err() != nil {
		return nil, session.ErrEnded
	}
	return s, nil
}

func (f *fakeSessions) Context(id string) (context.Context, error) {
	s, err := f.get(id)
	if err != nil {
		return nil, err
	}
	return s.ctx, nil
}

func (f *fakeSessions) Authorize(_ context.Context, id string, need session.Need) (context.Context, *session.Session, error) {
	s, err := f.get(id)
	if err != nil {
		return nil, nil, err
	}
	if need.Agent != s.agent {
		return nil, nil, session.ErrNotFound
	}
	if !s.scopes.Has(need.Kind) || (need.Kind == session.Tunnel && !s.scopes.AllowsPort(need.Port)) {
		return nil, nil, session.ErrScopeNotAllowed
	}
	return s.ctx, &session.Session{ID: id, Agent: s.agent, Scopes: s.scopes, State: session.Active}, nil
}

func (f *fakeSessions) Touch(string) {}

func newKey() (priv, pub [32]byte) {
	rand.Read(priv[:])
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	copy(pub[:], p)
	return priv, pub
}

func newHostKey(t testing.TB) ssh.Signer {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newHubEndpoint(t testing.TB, sessions wghub.Sessions, uc *net.UDPConn, endpoint string) *wghub.Hub {
	t.Helper()
	if uc == nil {
		return newHub(t, sessions, netip.Prefix{}, nil)
	}
	priv, _ := newKey()
	h, err := wghub.New(wghub.Config{PrivateKey: priv, Conn: uc, Endpoint: endpoint, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newHub(t testing.TB, sessions wghub.Sessions, prefix netip.Prefix, uc *net.UDPConn) *wghub.Hub {
	t.Helper()
	if uc == nil {
		var err error
		uc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { uc.Close() })
	}
	priv, _ := newKey()
	h, err := wghub.New(wghub.Config{PrivateKey: priv, Conn: uc, Endpoint: uc.LocalAddr().String(), Sessions: sessions, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestEnrollAndRemove(t *testing.T) {
	fs := newFakeSessions()
	h := newHub(t, fs, netip.Prefix{}, nil)
	s1 := fs.add("s1", "alice", "shell,tunnel:80")
	fs.add("s2", "alice", "shell")
	_, k1 := newKey()
	_, k2 := newKey()
	hk := newHostKey(t).PublicKey()

	en, err := h.Enroll("s1", k1, hk)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := en.GatewayAddress, netip.MustParseAddr("100.96.0.1"); got != want {
		t.Errorf("gateway address: got %s, want %s", got, want)
	}
	if en.Address == en.GatewayAddress || !wghub.DefaultPrefix.Contains(en.Address) {
		t.Errorf("helper address %s: want a fresh address in %s", en.Address, wghub.DefaultPrefix)
	}
	for _, tc := range []struct {
		name string
		id   string
		key  [32]byte
		want error
	}{
		{"same session again", "s1", k2, wghub.ErrAlreadyEnrolled},
		{"live key reused", "s2", k1, wghub.ErrKeyInUse},
		{"unknown session", "nope", k2, session.ErrNotFound},
	} {
		if _, err := h.Enroll(tc.id, tc.key, hk); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := h.DevicePeerCount(); got != 1 {
		t.Errorf("device peers: got %d, want 1", got)
	}
	start := time.Now()
	s1.cancel()
	for h.Enrolled("s1") || h.DevicePeerCount() != 0 {
		if time.Since(start) > time.Second {
			t.Fatal("peer not removed within 1s of the session's end")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := h.Dial(context.Background(), "s1", session.Need{Agent: "alice", Kind: session.Shell}); !errors.Is(err, session.ErrEnded) {
		t.Errorf("dial after the end: got %v, want ErrEnded", err)
	}
}

// TestAddressPlan: a live address is never handed out twice, even when the
// plan wraps around, and a full plan refuses.
func TestAddressPlan(t *testing.T) {
	fs := newFakeSessions()
	h := newHub(t, fs, netip.MustParsePrefix("100.100.7.0/24"), nil)
	hk := newHostKey(t).PublicKey()
	live := map[netip.Addr]string{}
	cancel := map[string]context.CancelFunc{}
	enroll := func(id string) (netip.Addr, error) {
		s := fs.add(id, "a", "shell")
		cancel[id] = s.cancel
		_, k := newKey()
		en, err := h.Enroll(id, k, hk)
		if err != nil {
			return netip.Addr{}, err
		}
		if other, dup := live[en.Address]; dup {
			t.Fatalf("%s got %s, still live for %s", id, en.Address, other)
		}
		live[en.Address] = id
		return en.Address, nil
	}
	// .0, .1 (gateway) and .255 are never handed out: 253 helpers fit.
	var first netip.Addr
	for i := range 253 {
		a, err := enroll(string(rune('A'+i/26)) + string(rune('a'+i%26)))
		if err != nil {
			t.Fatalf("helper %d: %v", i, err)
		}
		if i == 0 {
			first = a
		}
	}
	if _, err := enroll("overflow"); !errors.Is(err, wghub.ErrFull) {
		t.Fatalf("full plan: got %v, want ErrFull", err)
	}
	// Free one address in the middle; the next helper must get exactly it.
	var freed netip.Addr
	for a, id := range live {
		if a != first {
			freed = a
			cancel[id]()
			for h.Enrolled(id) {
				time.Sleep(time.Millisecond)
			}
			delete(live, a)
			break
		}
	}
	got, err := enroll("late")
	if err != nil || got != freed {
		t.Fatalf("after freeing %s: got %s, %v", freed, got, err)
	}
}

var randReader = rand.Reader

// TestRestoreAndRemove: a restored helper gets exactly its old address,
// which must be free and in the plan; Remove drops a helper at once.
func TestRestoreAndRemove(t *testing.T) {
	fs := newFakeSessions()
	h := newHub(t, fs, netip.Prefix{}, nil)
	fs.add("s1", "alice", "shell")
	fs.add("s2", "alice", "shell")
	fs.add("s3", "alice", "shell")
	_, k1 := newKey()
	_, k2 := newKey()
	_, k3 := newKey()
	hk := newHostKey(t).PublicKey()
	want := netip.MustParseAddr("100.96.3.7")
	if err := h.Restore("s1", k1, hk, want); err != nil {
		t.Fatal(err)
	}
	if got, err := h.HostKey("s1"); err != nil || got == nil {
		t.Fatalf("restored helper: host key %v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		id   string
		key  [32]byte
		addr netip.Addr
	}{
		{"address in use", "s2", k2, want},
		{"outside the plan", "s2", k2, netip.MustParseAddr("10.0.0.2")},
		{"the gateway's", "s2", k2, netip.MustParseAddr("100.96.0.1")},
		{"no address", "s2", k2, netip.Addr{}},
		{"session enrolled", "s1", k2, netip.MustParseAddr("100.96.3.8")},
	} {
		if err := h.Restore(tc.id, tc.key, hk, tc.addr); err == nil {
			t.Errorf("%s: restored", tc.name)
		}
	}
	// A fresh enrollment never takes a restored address.
	en, err := h.Enroll("s3", k3, hk)
	if err != nil || en.Address == want {
		t.Fatalf("enroll after restore: %v, %v", en, err)
	}
	h.Remove("s1")
	h.Remove("s1") // idempotent
	if h.Enrolled("s1") || h.DevicePeerCount() != 1 {
		t.Fatalf("after Remove: enrolled %v, device peers %d", h.Enrolled("s1"), h.DevicePeerCount())
	}
	if err := h.Restore("s2", k2, hk, want); err != nil {
		t.Errorf("address freed by Remove: %v", err)
	}
}
