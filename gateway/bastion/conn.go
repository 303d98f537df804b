package bastion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/audit"
	"supportgate/internal/sshwire"
	"supportgate/session"
)

// conn is one authenticated SSH connection of an agent or supervisor.
type conn struct {
	srv       *Server
	sc        *ssh.ServerConn
	id        string // the session
	principal string
	role      string // agent or supervisor
	login     string // the certificate's login (users.LoginID), for DropLogin
	remote    string
	sctx      context.Context // the session's: cancelled when it ends
	ctx       context.Context // the connection's: ends with the session, the server or the connection
	cancel    context.CancelFunc
	wg        sync.WaitGroup // channel handlers and their goroutines

	mu      sync.Mutex                 // guards the fields below
	chans   map[ssh.Channel]bool       // true: a session channel, told why the session ended
	pending []string                   // notices for the next shell (refused global requests)
	told    map[ssh.Channel]*sync.Once // telling channels why the session ended

	endOnce sync.Once
	endMsg  string                 // why the connection ended, set by endOnce
	dropped atomic.Pointer[string] // why DropUser, DropLogin or the login's expiry ended the connection; nil if none did

	slots chan struct{} // one per open channel, up to maxChansPerConn

	upMu sync.Mutex  // guards up
	up   *ssh.Client // to the helper's SSH endpoint, dialled on first use

	fwdSeq atomic.Int64
}

var connSeq atomic.Int64

// maxChansPerConn caps the channels one connection holds open at once:
// each costs goroutines and, for a shell, a channel on the helper.
const maxChansPerConn = 64

// serveConn runs one connection: handshake, then channels until the
// client leaves, the session ends, DropUser drops its user, or its login
// is signed out (DropLogin) or expires. src is the handshake place that
// track gave it.
func (s *Server) serveConn(raw net.Conn, src netip.Prefix) {
	c := sshwire.Wrap(raw)
	defer c.Close()
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, s.connConfig())
	s.handshakeDone(src)
	if err != nil {
		s.log.Info("bastion: handshake refused", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	c.SetDeadline(time.Time{})
	defer sc.Close()
	id := sc.User()
	sctx, err := s.cfg.Sessions.Context(id)
	if err != nil {
		return // ended between authentication and now
	}
	cn := &conn{
		srv: s, sc: sc, id: id, sctx: sctx,
		principal: sc.Permissions.Extensions[extPrincipal],
		role:      sc.Permissions.Extensions[extRole],
		login:     sc.Permissions.Extensions[extLogin],
		remote:    c.RemoteAddr().String(),
		chans:     map[ssh.Channel]bool{},
		slots:     make(chan struct{}, maxChansPerConn),
	}
	cn.ctx, cn.cancel = context.WithCancel(s.ctx)
	defer cn.cancel()
	drops, _ := strconv.ParseUint(sc.Permissions.Extensions[extDrops], 10, 64)
	if err := s.admit(cn, raw, drops); err != nil {
		s.log.Warn("bastion: connection refused after authentication", "session", id, "user", cn.principal, "remote", cn.remote, "err", err)
		return
	}
	defer s.leave(cn)
	stop := context.AfterFunc(sctx, cn.cancel)
	defer stop()
	// The connection ends with its login, as the login's websockets do.
	// The timer's callback only cancels, so nothing waits for it.
	expires, _ := strconv.ParseInt(sc.Permissions.Extensions[extLoginExpires], 10, 64)
	expiry := time.AfterFunc(time.Unix(0, expires).Sub(s.cfg.Now()), func() { cn.drop(msgLoginExpired) })
	defer expiry.Stop()
	s.log.Info("bastion: connected", "session", id, "user", cn.principal, "role", cn.role, "remote", cn.remote)

	cn.wg.Add(2)
	go func() {
		defer cn.wg.Done()
		<-cn.ctx.Done()
		cn.end()
	}()
	go func() {
		defer cn.wg.Done()
		cn.globalRequests(reqs)
	}()
	for nch := range chans {
		select {
		case cn.slots <- struct{}{}:
		default:
			nch.Reject(ssh.ResourceShortage, fmt.Sprintf("supportgate: at most %d channels at once on one connection", maxChansPerConn))
			continue
		}
		cn.wg.Add(1)
		go func() {
			defer cn.wg.Done()
			defer func() { <-cn.slots }()
			cn.channel(nch)
		}()
	}
	cn.cancel()
	cn.wg.Wait()
	cn.upMu.Lock()
	if cn.up != nil {
		cn.up.Close()
	}
	cn.upMu.Unlock()
}

// drop ends the connection because its user's access changed (DropUser)
// or its login ended (DropLogin, expiry); why is told to its shells. The
// first reason given is the one told.
func (cn *conn) drop(why string) {
	cn.dropped.CompareAndSwap(nil, &why)
	cn.cancel()
}

// end closes the connection; if the session ended or the user was
// dropped, every open session channel is told why first.
func (cn *conn) end() {
	if cn.sctx.Err() != nil || cn.dropped.Load() != nil {
		cn.mu.Lock()
		chans := make([]ssh.Channel, 0, len(cn.chans))
		for ch, tell := range cn.chans {
			if tell {
				chans = append(chans, ch)
			}
		}
		cn.mu.Unlock()
		// A client that stopped reading cannot hold the end back: the
		// writes get a moment, then the connection goes regardless.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, ch := range chans {
				cn.sayEnded(ch)
			}
		}()
		select {
		case <-done:
		case <-time.After(700 * time.Millisecond):
		}
	}
	cn.sc.Close()
	cn.upMu.Lock()
	if cn.up != nil {
		cn.up.Close()
	}
	cn.upMu.Unlock()
}

// sayEnded tells the agent on ch, once, why the connection ends.
func (cn *conn) sayEnded(ch ssh.Channel) {
	cn.mu.Lock()
	if cn.told == nil {
		cn.told = map[ssh.Channel]*sync.Once{}
	}
	once := cn.told[ch]
	if once == nil {
		once = new(sync.Once)
		cn.told[ch] = once
	}
	cn.mu.Unlock()
	// Whoever comes second waits for the first to finish writing.
	once.Do(func() {
		cn.endOnce.Do(func() {
			cn.endMsg = "\r\nsupportgate: connection closed: " + cn.endReason() + ".\r\n"
		})
		io.WriteString(ch.Stderr(), cn.endMsg)
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ C uint32 }{255}))
	})
}

// endReason says why the connection ends: its session ended, its user's
// access changed or its login ended.
func (cn *conn) endReason() string {
	if why := cn.dropped.Load(); cn.sctx.Err() == nil && why != nil {
		return *why
	}
	return endMessage(cn.srv.ended(cn.id))
}

// register tracks an open channel; session channels (tell) are told why
// when the session ends. Forward channels carry only the forwarded bytes.
func (cn *conn) register(ch ssh.Channel, tell bool) {
	cn.mu.Lock()
	cn.chans[ch] = tell
	cn.mu.Unlock()
}

// accept looks up the session's state and accepts nch, registered as
// register does; a state that cannot be had rejects it. When ok, the
// caller defers cn.unregister(ch).
func (cn *conn) accept(nch ssh.NewChannel, tell bool) (st *sessState, ch ssh.Channel, reqs <-chan *ssh.Request, ok bool) {
	st, err := cn.srv.state(cn.id)
	if err != nil {
		nch.Reject(ssh.ResourceShortage, "supportgate: "+err.Error())
		return nil, nil, nil, false
	}
	if ch, reqs, err = nch.Accept(); err != nil {
		return nil, nil, nil, false
	}
	cn.register(ch, tell)
	return st, ch, reqs, true
}

func (cn *conn) unregister(ch ssh.Channel) {
	cn.mu.Lock()
	delete(cn.chans, ch)
	delete(cn.told, ch)
	cn.mu.Unlock()
}

// note queues a notice for the next shell channel: refusals of global
// requests cannot carry text of their own.
func (cn *conn) note(msg string) {
	cn.mu.Lock()
	if len(cn.pending) < 8 {
		cn.pending = append(cn.pending, msg)
	}
	cn.mu.Unlock()
}

func (cn *conn) takeNotes() []string {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	p := cn.pending
	cn.pending = nil
	return p
}

func (cn *conn) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		switch req.Type {
		case "tcpip-forward", "cancel-tcpip-forward":
			cn.note("remote forwards (ssh -R) are not allowed: only -L to consented ports")
			cn.srv.log.Info("bastion: refused remote forward", "session", cn.id, "user", cn.principal)
		case "streamlocal-forward@openssh.com":
			cn.note("socket forwards are not allowed")
		}
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
}

// channel dispatches a new channel by type.
func (cn *conn) channel(nch ssh.NewChannel) {
	switch nch.ChannelType() {
	case "session":
		cn.sessionChannel(nch)
	case "direct-tcpip":
		cn.forward(nch)
	case "x11":
		nch.Reject(ssh.Prohibited, "supportgate: X11 forwarding is not allowed")
	case "auth-agent@openssh.com":
		nch.Reject(ssh.Prohibited, "supportgate: agent forwarding is not allowed")
	case "direct-streamlocal@openssh.com":
		nch.Reject(ssh.Prohibited, "supportgate: Unix socket forwarding is not allowed")
	default:
		nch.Reject(ssh.UnknownChannelType, fmt.Sprintf("supportgate: channel type %q is not allowed", nch.ChannelType()))
	}
}

// audit records an event of this connection.
func (cn *conn) audit(typ string, detail map[string]string) {
	detail["agent"] = cn.principal
	cn.srv.cfg.Audit(context.WithoutCancel(cn.ctx), audit.Event{
		Type: typ, Actor: cn.principal, Role: cn.role, Session: cn.id, Remote: cn.remote, Detail: detail,
	})
}

// presence reports this connection joining or leaving a channel of its
// session to Config.Presence.
func (cn *conn) presence(channel string, joined bool) {
	if f := cn.srv.cfg.Presence; f != nil {
		f(cn.id, Participant{Name: cn.principal, Role: cn.role, Channel: channel}, joined)
	}
}

// upstream returns the SSH client to the session's helper, connecting on
// first use with the gateway's host key, which is the one client key the
// helper accepts; the helper's enrolled host key is checked.
func (cn *conn) upstream() (*ssh.Client, error) {
	cn.upMu.Lock()
	defer cn.upMu.Unlock()
	if cn.up != nil {
		return cn.up, nil
	}
	h := cn.srv.cfg.Helpers
	if h == nil {
		return nil, errors.New("device access is disabled on this gateway")
	}
	hk, err := h.HostKey(cn.id)
	if err != nil {
		return nil, errors.New("the customer's helper is not connected (is supportgate-assist running?)")
	}
	ctx, cancel := context.WithTimeout(cn.ctx, 15*time.Second)
	defer cancel()
	nc, err := h.Dial(ctx, cn.id, session.Need{Agent: cn.principal, Kind: session.Shell})
	if err != nil {
		return nil, err
	}
	nc = sshwire.Wrap(nc)
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	cc, chans, reqs, err := ssh.NewClientConn(nc, "helper", &ssh.ClientConfig{
		User:            "supportgate",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(cn.srv.cfg.HostKey)},
		HostKeyCallback: ssh.FixedHostKey(hk),
		Config:          ssh.Config{Ciphers: fastCiphers},
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("the customer's helper refused the gateway: %w", err)
	}
	nc.SetDeadline(time.Time{})
	cn.up = ssh.NewClient(cc, chans, reqs)
	return cn.up, nil
}
