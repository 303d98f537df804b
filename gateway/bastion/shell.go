package bastion

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/detect"
	"supportgate/session"
)

type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

type windowChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

// sessionChannel relays a session channel of the agent to a session
// channel on the helper: requests both ways, output recorded.
func (cn *conn) sessionChannel(nch ssh.NewChannel) {
	if cn.role == "supervisor" {
		cn.watch(nch)
		return
	}
	if _, _, err := cn.srv.cfg.Sessions.Authorize(cn.ctx, cn.id, session.Need{Agent: cn.principal, Kind: session.Shell}); err != nil {
		nch.Reject(ssh.Prohibited, "supportgate: no shell in this session: "+err.Error())
		return
	}
	st, err := cn.srv.state(cn.id)
	if err != nil {
		nch.Reject(ssh.ResourceShortage, "supportgate: "+err.Error())
		return
	}
	up, err := cn.upstream()
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, "supportgate: cannot reach the customer's machine: "+err.Error())
		return
	}
	uch, ureqs, err := up.OpenChannel("session", nil)
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, "supportgate: the customer's helper refused a shell: "+err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		uch.Close()
		return
	}
	cn.register(ch, true)
	defer cn.unregister(ch)
	r := &relay{cn: cn, st: st, ch: ch, up: uch, num: st.newChannel(), started: make(chan struct{}), reqsDone: make(chan struct{})}
	r.run(reqs, ureqs)
}

// relay is one agent session channel and its twin on the helper.
type relay struct {
	cn *conn
	st *sessState
	ch ssh.Channel // the agent's
	up ssh.Channel // the helper's
	// num is the channel's number in the session: its terminal records
	// carry it, and its events and audit entries name it as channel_id.
	num int

	out, in atomic.Int64 // bytes to the agent, bytes to the helper

	mu     sync.Mutex // guards kind, pty
	kind   string     // "shell" or "exec" once started
	pty    bool
	notice io.Writer // registered for notices

	// forwarding is held while a request is forwarded to the helper and
	// its answer relayed to the agent. A command that exits at once ends
	// the helper's channel as soon as the helper has answered exec, and
	// the agent's channel must not close before that answer reaches the
	// agent: a client would see EOF from starting the command instead of
	// its exit status.
	forwarding sync.Mutex

	// started is closed once a shell or command was asked for and
	// forwarded: input waits for it, so that whether the channel has a
	// terminal is settled before any input is recorded (data can arrive
	// before the requests are handled). reqsDone is closed when the
	// agent's requests end, with the channel.
	started     chan struct{}
	startedOnce sync.Once
	startedPTY  bool // whether the shell or command has a terminal; set before started closes
	reqsDone    chan struct{}
}

func (r *relay) run(reqs, ureqs <-chan *ssh.Request) {
	var wg sync.WaitGroup
	// Requests from the helper: its exit is held until its output is
	// all relayed.
	var exit *ssh.Request
	upReqsDone := make(chan struct{})
	go func() {
		defer close(upReqsDone)
		exit = lastExit(ureqs)
	}()
	// Output: stdout and stderr of the helper, recorded, then sent.
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.relayOutput(r.ch, r.up)
	}()
	go func() {
		defer wg.Done()
		r.relayOutput(r.ch.Stderr(), r.up.Stderr())
	}()
	// Input from the agent.
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		_, err := io.Copy(&input{r: r}, r.ch)
		if errors.Is(err, errUnrecorded) {
			r.up.Close()
		}
		r.up.CloseWrite()
	}()
	// Requests from the agent; when the agent closes the channel, the
	// helper's goes too.
	go func() {
		defer close(r.reqsDone)
		for req := range reqs {
			r.request(req)
		}
		r.up.Close()
	}()

	wg.Wait()
	<-upReqsDone
	// The helper's channel is closed: a request being forwarded has its
	// answer (or an error) by now; let it reach the agent first.
	r.forwarding.Lock()
	r.forwarding.Unlock()
	if r.cn.sctx.Err() != nil {
		// The session ended and took the helper's side with it: say why
		// here, as the connection may not outlive this channel long.
		r.cn.sayEnded(r.ch)
	} else if exit != nil {
		r.ch.SendRequest(exit.Type, false, exit.Payload)
	}
	// No CloseWrite: x/crypto's is not safe beside the notices other
	// goroutines may be writing; Close alone ends the channel.
	r.ch.Close()
	r.up.Close()
	<-inDone
	<-r.reqsDone

	r.mu.Lock()
	kind, notice := r.kind, r.notice
	r.mu.Unlock()
	if notice != nil {
		r.st.removeNotice(notice)
	}
	// Whatever redaction still holds back of this channel is recorded
	// now, and the recording lets go of its screen.
	r.st.rec.EndChannel(r.num)
	r.st.channelEnded(r.num)
	if kind != "" {
		r.cn.presence("shell", false)
		r.st.rec.Event("ssh.channel_closed", map[string]string{"agent": r.cn.principal, "channel": kind, "channel_id": r.id()})
		r.cn.audit("channel.closed", map[string]string{
			"channel": kind, "channel_id": r.id(), "bytes_out": strconv.FormatInt(r.out.Load(), 10), "bytes_in": strconv.FormatInt(r.in.Load(), 10),
		})
	}
}

// lastExit refuses the helper's requests until reqs closes and returns
// the last exit-status or exit-signal, if any. A process exits once; the
// last is kept so that a helper sending endless exits holds no memory.
func lastExit(reqs <-chan *ssh.Request) *ssh.Request {
	var exit *ssh.Request
	for req := range reqs {
		if req.Type == "exit-status" || req.Type == "exit-signal" {
			exit = req
		}
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
	return exit
}

// request handles one request of the agent's channel.
func (r *relay) request(req *ssh.Request) {
	refuse := func(msg string) {
		io.WriteString(r.ch.Stderr(), "supportgate: "+msg+"\r\n")
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
	switch req.Type {
	case "pty-req":
		var p ptyRequest
		if ssh.Unmarshal(req.Payload, &p) != nil {
			refuse("malformed pty request")
			return
		}
		// A terminal comes before the shell or command, and counts only
		// if the helper gave one: input is recorded as sent without a
		// terminal otherwise (see input), and a pty-req after the start,
		// which the helper refuses, must not switch that off.
		r.mu.Lock()
		started := r.kind != ""
		r.mu.Unlock()
		if started {
			refuse("a terminal must be asked for before the shell or command starts")
			return
		}
		r.forwarding.Lock()
		// Asked with a reply whatever the agent wanted: whether the
		// helper gave a terminal must be known.
		ok, err := r.up.SendRequest(req.Type, true, req.Payload)
		r.forwarding.Unlock()
		given := ok && err == nil
		if given {
			r.st.rec.ResizeOn(r.num, int(p.Cols), int(p.Rows))
			r.mu.Lock()
			r.pty = true
			r.mu.Unlock()
		}
		if req.WantReply {
			req.Reply(given, nil)
		}
		return
	case "window-change":
		var w windowChange
		if ssh.Unmarshal(req.Payload, &w) == nil {
			r.st.rec.ResizeOn(r.num, int(w.Cols), int(w.Rows))
		}
	case "env", "signal", "break":
	case "shell", "exec":
		r.mu.Lock()
		started := r.kind != ""
		r.mu.Unlock()
		if started {
			refuse("this channel already runs a " + r.kind)
			return
		}
		terminal := "no"
		if r.hasPTY() {
			terminal = "yes"
		}
		detail := map[string]string{"channel": req.Type, "channel_id": r.id(), "pty": terminal}
		if req.Type == "exec" {
			var c struct{ Command string }
			if ssh.Unmarshal(req.Payload, &c) != nil {
				refuse("malformed exec request")
				return
			}
			// The command line goes to the audit log, which is not
			// encrypted, and to the recording's events: both get the
			// recording's redactions (card numbers, configured patterns).
			// The detector reads the audit log, where the line is cut:
			// the whole line is classified here, so that padding cannot
			// push what it does past the cut.
			cmd := r.st.rec.RedactText(c.Command)
			ad := map[string]string{"command": truncate(cmd, 1024)}
			if risk := detect.ClassifyCommand(cmd); len(risk) > 0 {
				ad["risk"] = detect.Categories(risk)
			}
			r.cn.audit("shell.command", ad)
			r.st.rec.Event("ssh.exec", map[string]string{"agent": r.cn.principal, "command": cmd, "pty": terminal, "channel_id": r.id()})
		} else {
			r.st.rec.Event("ssh.shell", map[string]string{"agent": r.cn.principal, "pty": terminal, "channel_id": r.id()})
		}
		r.cn.audit("channel.opened", detail)
		r.cn.presence("shell", true)
		r.mu.Lock()
		r.kind = req.Type
		pty := r.pty
		r.notice = r.ch.Stderr()
		r.mu.Unlock()
		r.banner(pty)
		r.st.addNotice(r.notice)
		r.st.channelOpened(r.num)
	case "subsystem":
		var sub struct{ Name string }
		ssh.Unmarshal(req.Payload, &sub)
		// OpenSSH drops what arrives with a refused subsystem; accept it,
		// say why and end the channel.
		if req.WantReply {
			req.Reply(true, nil)
		}
		fmt.Fprintf(r.ch.Stderr(), "supportgate: subsystem %q is not allowed: the bastion runs recorded shells and commands only\r\n", sub.Name)
		r.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ C uint32 }{1}))
		r.ch.Close()
		return
	case "x11-req":
		refuse("X11 forwarding is not allowed")
		return
	case "auth-agent-req@openssh.com":
		refuse("agent forwarding is not allowed")
		return
	default:
		if req.WantReply {
			req.Reply(false, nil)
		}
		return
	}
	r.forwarding.Lock()
	defer r.forwarding.Unlock()
	ok, err := r.up.SendRequest(req.Type, req.WantReply, req.Payload)
	if req.WantReply {
		req.Reply(ok && err == nil, nil)
	}
	if req.Type == "shell" || req.Type == "exec" {
		r.startedOnce.Do(func() {
			r.startedPTY = r.hasPTY() // settled: no pty-req is taken from now on
			close(r.started)
		})
	}
}

// banner tells the agent the session is recorded and when it ends: on
// the terminal for a PTY, on stderr for a command so its output stays
// clean.
func (r *relay) banner(pty bool) {
	s, err := r.cn.srv.cfg.Sessions.Get(r.cn.ctx, r.cn.id)
	if err != nil {
		return
	}
	now := r.cn.srv.cfg.Now()
	msg := fmt.Sprintf("supportgate: session %s with %q. This session is recorded. It ends at %s (in %s).\r\n",
		s.ID, s.Customer, s.ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC"), s.ExpiresAt.Sub(now).Round(time.Second))
	for _, n := range r.cn.takeNotes() {
		msg += "supportgate: " + n + "\r\n"
	}
	if pty {
		io.WriteString(r.ch, msg)
	} else {
		io.WriteString(r.ch.Stderr(), msg)
	}
}

// errNotStarted ends the input of a channel closed before it ran a shell
// or a command: nothing it sent went anywhere.
var errNotStarted = errors.New("the channel ran no shell or command")

// errUnrecorded stops a relay whose recording refused what it carried:
// the recording reached its size cap or its file failed. Nothing passes
// unrecorded; the gateway ends the session as well.
var errUnrecorded = errors.New("the recording failed, so nothing more is relayed")

// relayOutput copies the helper's output src to the agent's dst through
// the recording. If the recording refuses it, the helper's channel is
// closed, which ends the other copies of this relay too.
func (r *relay) relayOutput(dst io.Writer, src io.Reader) {
	_, err := io.Copy(&tee{w: dst, st: r.st, num: r.num, n: &r.out}, src)
	if errors.Is(err, errUnrecorded) {
		r.cn.srv.log.Error("bastion: recording refused output; closing the channel", "session", r.cn.id, "err", err)
		r.up.Close()
	}
}

// tee records output before it is sent to the agent; what the recording
// refuses is not sent.
type tee struct {
	w   io.Writer
	st  *sessState
	num int // the channel's number
	n   *atomic.Int64
}

func (t *tee) Write(p []byte) (int, error) {
	if err := t.st.output(t.num, p); err != nil {
		return 0, fmt.Errorf("%w: %w", errUnrecorded, err)
	}
	n, err := t.w.Write(p)
	t.n.Add(int64(n))
	return n, err
}

// input passes what the agent sends to the helper. On a terminal that is
// keystrokes, recorded only if configured (the terminal echoes what it
// shows; what it does not, such as a password at a prompt, stays out).
// Without a terminal nothing is echoed, so everything sent is recorded: a
// script piped into sh, or a file an upload streams, would otherwise run
// on the customer's machine without a trace.
type input struct{ r *relay }

func (in *input) Write(p []byte) (int, error) {
	select {
	case <-in.r.started:
	case <-in.r.reqsDone:
		return 0, errNotStarted
	}
	rec := in.r.st.rec.StdinOn
	if in.r.startedPTY {
		rec = in.r.st.rec.InputOn
	}
	if err := rec(in.r.num, p); err != nil {
		return 0, fmt.Errorf("%w: %w", errUnrecorded, err)
	}
	n, err := in.r.up.Write(p)
	in.r.in.Add(int64(n))
	return n, err
}

// id is the channel's number as events and audit entries name it.
func (r *relay) id() string { return strconv.Itoa(r.num) }

func (r *relay) hasPTY() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pty
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
