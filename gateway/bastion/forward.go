package bastion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/recorder"
	"supportgate/session"
)

// directTCPIP is the payload of a direct-tcpip channel (RFC 4254 7.2).
type directTCPIP struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// forward serves ssh -L: a direct-tcpip channel to a consented port on the
// helper's loopback, through the hub. Only metadata is recorded.
func (cn *conn) forward(nch ssh.NewChannel) {
	var d directTCPIP
	if err := ssh.Unmarshal(nch.ExtraData(), &d); err != nil {
		nch.Reject(ssh.ConnectionFailed, "supportgate: malformed forward request")
		return
	}
	switch {
	case cn.role == "supervisor":
		nch.Reject(ssh.Prohibited, "supportgate: supervisors watch read-only; forwards are not allowed")
		return
	case d.Host != "localhost" && d.Host != "127.0.0.1":
		nch.Reject(ssh.Prohibited, fmt.Sprintf("supportgate: forwards reach only localhost on the customer's machine, not %q", d.Host))
		return
	case d.Port == 0 || d.Port > 65535:
		nch.Reject(ssh.Prohibited, fmt.Sprintf("supportgate: port %d is not a valid port", d.Port))
		return
	case cn.srv.cfg.Helpers == nil:
		nch.Reject(ssh.ConnectionFailed, "supportgate: device access is disabled on this gateway")
		return
	}
	port := uint16(d.Port)
	ctx, cancel := context.WithTimeout(cn.ctx, 15*time.Second)
	up, err := cn.srv.cfg.Helpers.Dial(ctx, cn.id, session.Need{Agent: cn.principal, Kind: session.Tunnel, Port: port})
	cancel()
	if err != nil {
		if errors.Is(err, session.ErrScopeNotAllowed) {
			allowed := "none"
			if s, gerr := cn.srv.cfg.Sessions.Get(cn.ctx, cn.id); gerr == nil {
				for _, sc := range s.Scopes {
					if sc.Kind == session.Tunnel {
						allowed = sc.String()
					}
				}
			}
			nch.Reject(ssh.Prohibited, fmt.Sprintf("supportgate: port %d is not consented for this session (granted: %s)", port, allowed))
			return
		}
		nch.Reject(ssh.ConnectionFailed, fmt.Sprintf("supportgate: cannot reach port %d on the customer's machine: %v", port, err))
		return
	}
	defer up.Close()
	st, ch, reqs, ok := cn.accept(nch, false)
	if !ok {
		return
	}
	defer cn.unregister(ch)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs) // ends when ch closes
	}()

	fid := fmt.Sprintf("%s-%d", cn.principal, cn.fwdSeq.Add(1))
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	source := net.JoinHostPort(d.OrigHost, strconv.Itoa(int(d.OrigPort)))
	st.rec.Forward(recorder.ForwardMeta{ID: fid, State: "open", Protocol: "tcp", Source: source, Target: target})
	cn.audit("channel.opened", map[string]string{"channel": "direct-tcpip", "target": target})
	cn.presence("forward", true)
	defer cn.presence("forward", false)

	var in, out atomic.Int64
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { // agent -> customer
		defer copies.Done()
		n, _ := io.Copy(up, ch)
		in.Add(n)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			up.Close()
		}
	}()
	go func() { // customer -> agent
		defer copies.Done()
		n, _ := io.Copy(ch, up)
		out.Add(n)
		ch.CloseWrite()
	}()
	copies.Wait()
	ch.Close()

	st.rec.Forward(recorder.ForwardMeta{ID: fid, State: "close", Protocol: "tcp", Source: source, Target: target,
		BytesUp: in.Load(), BytesDown: out.Load()})
	cn.audit("channel.closed", map[string]string{
		"channel": "direct-tcpip", "target": target,
		"bytes_out": strconv.FormatInt(out.Load(), 10), "bytes_in": strconv.FormatInt(in.Load(), 10),
	})
}
