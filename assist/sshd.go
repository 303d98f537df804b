package assist

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"supportgate/internal/sshwire"
)

// The SSH endpoint: the gateway (and only the gateway: its host key is the
// one client key accepted) opens session channels for a PTY shell or a
// command, run as the helper's own user. Nothing else is served: no port
// forwarding, no agent forwarding, no subsystems.

// ServeSSH serves one SSH connection that reached the helper some other
// way than through the tunnel. The gateway never does that; benchmarks use
// it to measure the bastion without the WireGuard hop. The connection must
// still authenticate as the gateway (the key enrolled with the helper),
// and Close ends it like the others. It returns when the connection ends.
func (e *Endpoint) ServeSSH(c net.Conn) { e.serveSSH(c) }

func (e *Endpoint) serveSSH(c net.Conn) {
	mark := &sshConnMark{c}
	if !e.track(c, mark) {
		return
	}
	defer e.untrack(mark)
	wc := sshwire.Wrap(c)
	defer wc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(wc, e.ssh)
	if err != nil {
		e.log.Info("ssh: handshake refused", "err", err)
		return
	}
	defer sc.Close()
	e.log.Info("ssh: gateway connected")
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.Prohibited, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.session(ch, creqs)
		}()
	}
}

type ptyReq struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

// session serves one session channel: env and pty-req before a shell or
// exec, window-change while it runs.
func (e *Endpoint) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var (
		term     string
		win      *pty.Winsize
		env      []string
		ptmx     *os.File
		started  bool
		exitc    = make(chan int, 1)
		procDone = make(chan struct{})
	)
	for {
		select {
		case <-e.ctx.Done():
			return
		case code := <-exitc:
			// Drain what the process wrote before reporting its status.
			<-procDone
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ C uint32 }{uint32(code)}))
			return
		case req, ok := <-reqs:
			if !ok {
				return
			}
			switch req.Type {
			case "env":
				var kv struct{ K, V string }
				if ssh.Unmarshal(req.Payload, &kv) == nil && (kv.K == "LANG" || kv.K == "LC_ALL" || kv.K == "TZ") {
					env = append(env, kv.K+"="+kv.V)
					req.Reply(true, nil)
					continue
				}
				req.Reply(false, nil)
			case "pty-req":
				var p ptyReq
				if started || ssh.Unmarshal(req.Payload, &p) != nil {
					req.Reply(false, nil)
					continue
				}
				term = p.Term
				win = &pty.Winsize{Cols: uint16(p.Cols), Rows: uint16(p.Rows)}
				req.Reply(true, nil)
			case "window-change":
				if len(req.Payload) >= 8 && ptmx != nil {
					setWinsize(ptmx, uint16(binary.BigEndian.Uint32(req.Payload)), uint16(binary.BigEndian.Uint32(req.Payload[4:])))
				}
				if req.WantReply {
					req.Reply(true, nil)
				}
			case "shell", "exec":
				if started {
					req.Reply(false, nil)
					continue
				}
				var args []string
				if req.Type == "exec" {
					var cmd struct{ C string }
					if ssh.Unmarshal(req.Payload, &cmd) != nil {
						req.Reply(false, nil)
						continue
					}
					args = []string{"-c", cmd.C}
				} else {
					args = []string{"-l"}
				}
				f, err := e.start(ch, args, term, win, env, exitc, procDone)
				if err != nil {
					e.log.Warn("ssh: starting shell", "err", err)
					req.Reply(false, nil)
					return
				}
				ptmx, started = f, true
				if f != nil {
					defer f.Close() // after the loop: window-change may still use it
				}
				req.Reply(true, nil)
			default:
				if req.WantReply {
					req.Reply(false, nil)
				}
			}
		}
	}
}

// start runs the customer's shell with args, on a PTY when one was asked
// for, wired to ch. The process, and every process it started, is killed
// when it exits or the session ends (see jobs).
func (e *Endpoint) start(ch ssh.Channel, args []string, term string, win *pty.Winsize, env []string,
	exitc chan<- int, procDone chan<- struct{}) (*os.File, error) {
	cmd := exec.Command(e.cfg.Shell, args...)
	cmd.Dir = e.cfg.Dir
	cmd.Env = append(e.baseEnv(), env...)
	if term != "" {
		cmd.Env = append(cmd.Env, "TERM="+term)
	}
	// Held from the marker to the start, so that no sweep sees the
	// process before it is recorded (and reaps it before os/exec can).
	e.jobs.mu.Lock()
	if e.ctx.Err() != nil {
		e.jobs.mu.Unlock()
		return nil, errors.New("endpoint closing")
	}
	marker := e.jobs.markerLocked()
	cmd.Env = append(cmd.Env, jobMarkerEnv+"="+marker)
	var ptmx *os.File
	var copies sync.WaitGroup
	if win != nil {
		f, err := pty.StartWithSize(cmd, win) // in a new session, with the PTY as its terminal
		if err == nil {
			f, err = pollable(f)
			if err != nil {
				kill(cmd)
				cmd.Wait()
			}
		}
		if err != nil {
			e.jobs.mu.Unlock()
			return nil, err
		}
		ptmx = f
		copies.Add(1)
		go func() { defer copies.Done(); io.Copy(ch, f) }()
		go func() { io.Copy(f, ch) }() // ends when the channel or pty closes
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		cmd.Stdout = bulkWriter{ch}
		cmd.Stderr = ch.Stderr()
		cmd.WaitDelay = time.Second // a background child holding stdout open cannot stall the exit status
		stdin, err := cmd.StdinPipe()
		if err != nil {
			e.jobs.mu.Unlock()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			e.jobs.mu.Unlock()
			return nil, err
		}
		// Not waited for: it ends when the channel or the pipe closes.
		go func() { io.Copy(stdin, ch); stdin.Close() }()
	}
	e.jobs.startedLocked(marker, cmd.Process.Pid)
	e.jobs.mu.Unlock()
	e.mu.Lock()
	e.shells++
	e.mu.Unlock()
	stop := make(chan struct{})
	// reaped is set once os/exec has waited for the process: from then on
	// its pid, and the process group it named, may be anyone's, so no
	// group kill goes out (the sweep by marker and known processes does
	// the rest).
	var reapMu sync.Mutex
	reaped := false
	e.wg.Add(2)
	go func() { // the session ends: the process goes
		defer e.wg.Done()
		select {
		case <-e.ctx.Done():
			reapMu.Lock()
			if !reaped {
				kill(cmd)
			}
			reapMu.Unlock()
		case <-stop:
		}
	}()
	go func() {
		defer e.wg.Done()
		err := cmd.Wait()
		reapMu.Lock()
		reaped = true
		reapMu.Unlock()
		e.jobs.waited(marker)
		// Its jobs go with it: one left in the background would hold the
		// PTY open, and run on as the customer after the session.
		if left := e.jobs.sweep([]string{marker}); left > 0 {
			e.log.Warn("ssh: processes of an ended shell could not be killed", "left", left)
		}
		if ptmx != nil {
			// The PTY's output, up to the EIO that follows the exit; a
			// process that escaped the sweep must not hold the session.
			drained := make(chan struct{})
			go func() { copies.Wait(); close(drained) }()
			select {
			case <-drained:
			case <-time.After(drainWait):
				ptmx.Close() // in the runtime poller: interrupts the read
				<-drained
			}
		}
		close(stop)
		e.mu.Lock()
		e.shells--
		e.mu.Unlock()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			if code < 0 {
				code = 255
			}
		}
		close(procDone)
		exitc <- code
	}()
	return ptmx, nil
}

// pollable returns a PTY master that the runtime poller reads, so that
// closing it interrupts a Read: creack/pty's ioctls call Fd, which leaves
// the descriptor blocking, out of the poller. f is closed.
func pollable(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	cerr := rc.Control(func(fd uintptr) {
		nfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	f.Close()
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), "/dev/ptmx"), nil
}

// setWinsize resizes the PTY without Fd (see pollable).
func setWinsize(f *os.File, cols, rows uint16) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows})
	})
}

// A command's stdout pipe is grown to pipeSize (Linux's default limit for
// unprivileged processes, /proc/sys/fs/pipe-max-size) and read copyBuf
// at a time, so that bulk output crosses it in fewer system calls and
// wakeups than with the default 64 KiB pipe and io.Copy's 32 KiB reads.
const (
	pipeSize = 1 << 20
	copyBuf  = 256 << 10
)

// bulkWriter is a channel as a command's stdout. os/exec copies the
// command's pipe with the writer's ReadFrom when it has one; this one
// grows the pipe and reads it copyBuf at a time. The channel cuts what it
// sends into SSH packets anyway.
type bulkWriter struct{ w io.Writer }

func (b bulkWriter) Write(p []byte) (int, error) { return b.w.Write(p) }

func (b bulkWriter) ReadFrom(r io.Reader) (int64, error) {
	growPipe(r, pipeSize)
	return io.CopyBuffer(struct{ io.Writer }{b.w}, r, make([]byte, copyBuf))
}

// kill ends the process and its process group (it leads both, and its
// session: see jobs for the rest of its tree).
func kill(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Process.Signal(syscall.SIGHUP)
	cmd.Process.Kill()
}

// baseEnv is the environment shells start with: the helper's own, minus
// nothing — the shell is the customer's, as the customer.
func (e *Endpoint) baseEnv() []string {
	if e.cfg.Env != nil {
		return append([]string(nil), e.cfg.Env...)
	}
	return os.Environ()
}
