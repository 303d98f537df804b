package bastion_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"supportgate/gateway/bastion"
	"supportgate/internal/realpeer"
	"supportgate/session"
)

// Benchmarks, each with its baseline measured in the same run:
//
//	BenchmarkBulk      ssh ... 'head -c N /dev/zero' through the bastion
//	                   (recording on) vs OpenSSH ssh to a private OpenSSH
//	                   sshd on loopback. N is SG_BENCH_BYTES (default 256 MiB).
//	BenchmarkEcho      keystroke echo round trips on a PTY through the
//	                   bastion vs straight through the hub to the helper:
//	                   the difference is what the bastion adds.
//	BenchmarkShells    SG_BENCH_SHELLS concurrent PTY shells (default 500)
//	                   over SG_BENCH_SESSIONS sessions (default 10), memory
//	                   per shell through the bastion vs through the hub alone.

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// sshdProc is a private sshd: its port, a known_hosts file for it and
// its process id.
type sshdProc struct {
	port, knownHosts string
	pid              int
}

// privateSSHD runs OpenSSH's sshd on a loopback port with its own host
// key and config, accepting id's key.
func privateSSHD(b *testing.B, id *identity) sshdProc {
	b.Helper()
	sshd := realpeer.Require(b, "sshd")
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	}
	dir := b.TempDir()
	hk := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hk).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(id.key + ".pub")
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, pub, 0o600)
	port := ""
	{
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		_, port, _ = net.SplitHostPort(ln.Addr().String())
		ln.Close()
	}
	cfg := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
`, port, hk, ak)), 0o600)
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfg)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !waitFor(10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		b.Fatalf("sshd did not start: %s", logs.String())
	}
	hostPub, _ := os.ReadFile(hk + ".pub")
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte("[127.0.0.1]:"+port+" "+string(hostPub)), 0o644)
	return sshdProc{port: port, knownHosts: kh, pid: cmd.Process.Pid}
}

// treeCPU is the CPU time of process pid and of its children it has
// waited for (utime, stime, cutime and cstime of /proc/PID/stat): for
// sshd -D, the master and every connection it served and reaped. It
// first waits (up to 5 s) until pid has no children left, so that a
// connection's CPU is counted once it ended, not in the next one.
func treeCPU(pid int) time.Duration {
	waitFor(5*time.Second, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		return err != nil || len(strings.TrimSpace(string(b))) == 0
	})
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	var ticks int64
	for _, i := range []int{14, 15, 16, 17} {
		v, _ := strconv.ParseInt(f[i-3], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// selfCPU is the user plus system CPU time of this process and of the
// children it has waited for (ssh, and the helper's shells and commands).
func selfCPU() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
}

// BenchmarkBulk runs ssh ... 'head -c N /dev/zero' over four paths in
// turn, each once per iteration: OpenSSH ssh to OpenSSH sshd directly
// (the baseline); through the bastion with recording on, to the helper
// through the WireGuard hub (the whole path); through the bastion with
// recording on, to the helper over loopback TCP (the bastion leg alone,
// "leg-"); and x/crypto's client straight through the hub (no bastion).
// ratio and leg-ratio are the baseline's wall time over the path's; the
// cpu- metrics count every process of a path.
//
//	go test -run '^$' -bench '^BenchmarkBulk$' -benchtime 1x ./gateway/bastion/
func BenchmarkBulk(b *testing.B) {
	n := envInt("SG_BENCH_BYTES", 256<<20)
	legs := &legHelpers{direct: map[string]string{}}
	e := newEnv(b, envOptions{wrapHelpers: func(h bastion.Helpers) bastion.Helpers { legs.Helpers = h; return legs }})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", time.Hour)
	// The bastion leg alone: a second session whose helper the bastion
	// reaches over loopback TCP instead of through the WireGuard hub.
	ls := e.newSession("alice", "shell", time.Hour)
	legs.serve(b, ls)
	alice := e.certFor("alice")
	sshd := privateSSHD(b, alice)
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	command := fmt.Sprintf("head -c %d /dev/zero", n)
	// run runs ssh and returns the wall time and the CPU time of every
	// process on the path: ssh, this process (bastion, hub and helper) and
	// the helper's shell and head, or sshd's tree (its session, shell and head).
	run := func(args []string) (wall, cpu time.Duration) {
		cmd := exec.Command(e.sshBin, args...)
		cmd.Env = append(os.Environ(), "HOME="+alice.dir)
		cw := &countWriter{}
		cmd.Stdout = cw
		var errb bytes.Buffer
		cmd.Stderr = &errb
		c0, d0 := selfCPU(), treeCPU(sshd.pid)
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%v: %v %s", args, err, errb.String())
		}
		wall = time.Since(start)
		if cw.n != int64(n) {
			b.Fatalf("got %d bytes, want %d (%s)", cw.n, n, errb.String())
		}
		return wall, selfCPU() - c0 + treeCPU(sshd.pid) - d0
	}
	direct := []string{"-F", "/dev/null", "-p", sshd.port, "-i", alice.key, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + sshd.knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		user + "@127.0.0.1", command}
	bastion := append(e.sshArgs(alice, s.ID), command)
	leg := append(e.sshArgs(alice, ls.ID), command)
	// The hop the bastion cannot avoid: x/crypto's client straight
	// through the WireGuard hub to the helper, no bastion, no recording.
	hub := e.hubClient(b, s.ID, "alice")
	defer hub.Close()
	runHub := func() (wall, cpu time.Duration) {
		ss, err := hub.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		defer ss.Close()
		cw := &countWriter{}
		ss.Stdout = cw
		c0 := selfCPU()
		start := time.Now()
		if err := ss.Run(command); err != nil {
			b.Fatal(err)
		}
		if cw.n != int64(n) {
			b.Fatalf("hub: got %d bytes, want %d", cw.n, n)
		}
		return time.Since(start), selfCPU() - c0
	}
	run(direct) // warm up every path
	run(bastion)
	run(leg)
	runHub()
	b.ResetTimer()
	var dd, bd, ld, hd, dc, bc, lc, hc time.Duration
	for i := 0; i < b.N; i++ {
		w, c := run(direct)
		dd, dc = dd+w, dc+c
		w, c = run(bastion)
		bd, bc = bd+w, bc+c
		w, c = run(leg)
		ld, lc = ld+w, lc+c
		w, c = runHub()
		hd, hc = hd+w, hc+c
	}
	b.StopTimer()
	mb := float64(n) * float64(b.N) / (1 << 20)
	b.ReportMetric(mb/dd.Seconds(), "direct-MiB/s")
	b.ReportMetric(mb/bd.Seconds(), "bastion-MiB/s")
	b.ReportMetric(mb/hd.Seconds(), "hub-only-MiB/s")
	b.ReportMetric(mb/ld.Seconds(), "leg-MiB/s")
	b.ReportMetric(dd.Seconds()/bd.Seconds(), "ratio")
	b.ReportMetric(dd.Seconds()/ld.Seconds(), "leg-ratio")
	b.ReportMetric(hd.Seconds()/bd.Seconds(), "bastion/hub-ratio")
	// CPU per MiB of all the processes of each path: steadier than MiB/s
	// on a shared machine.
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / mb }
	b.ReportMetric(ms(dc), "direct-cpu-ms/MiB")
	b.ReportMetric(ms(bc), "bastion-cpu-ms/MiB")
	b.ReportMetric(ms(hc), "hub-only-cpu-ms/MiB")
	b.ReportMetric(ms(lc), "leg-cpu-ms/MiB")
	b.ReportMetric(float64(dc)/float64(bc), "cpu-ratio")
	b.ReportMetric(float64(dc)/float64(lc), "leg-cpu-ratio")
	b.ReportMetric(0, "ns/op")
}

// legHelpers are the gateway's helpers as the bastion sees them, except
// that the sessions in direct reach their helper over loopback TCP: the
// bastion leg without the WireGuard hop. The bastion has authorised the
// agent before it dials; the helper still authenticates the gateway.
type legHelpers struct {
	bastion.Helpers
	direct map[string]string // session id -> address; written before use
}

func (l *legHelpers) Dial(ctx context.Context, id string, need session.Need) (net.Conn, error) {
	if addr, ok := l.direct[id]; ok {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	return l.Helpers.Dial(ctx, id, need)
}

// serve makes s's helper serve SSH on a loopback listener and routes the
// bastion's connections for s there.
func (l *legHelpers) serve(b *testing.B, s *testSession) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.ep.ServeSSH(c) })
		}
	})
	l.direct[s.ID] = ln.Addr().String()
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// goClient connects with x/crypto's client through the bastion.
func (e *env) goClient(b testing.TB, id *identity, user string) *ssh.Client {
	b.Helper()
	keyPEM, _ := os.ReadFile(id.key)
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	certLine, _ := os.ReadFile(id.cert)
	pk, _, _, _, err := ssh.ParseAuthorizedKey(certLine)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(pk.(*ssh.Certificate), signer)
	if err != nil {
		b.Fatal(err)
	}
	c, err := ssh.Dial("tcp", "127.0.0.1:"+e.port, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(cs)},
		HostKeyCallback: ssh.FixedHostKey(e.mat.SSHHostKey.PublicKey()), Timeout: 30 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// hubClient connects straight through the hub to the helper, as the
// bastion itself does: the baseline without the bastion.
func (e *env) hubClient(b testing.TB, id, agent string) *ssh.Client {
	b.Helper()
	hk, err := e.g.WireGuard().HostKey(id)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := e.g.WireGuard().Dial(context.Background(), id, session.Need{Agent: agent, Kind: session.Shell})
	if err != nil {
		b.Fatal(err)
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, "helper", &ssh.ClientConfig{
		User: "supportgate", Auth: []ssh.AuthMethod{ssh.PublicKeys(e.mat.SSHHostKey)},
		HostKeyCallback: ssh.FixedHostKey(hk), Timeout: 30 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	return ssh.NewClient(cc, chans, reqs)
}

// ptyCat starts `cat` on a PTY in raw mode without echo... with the PTY's
// own echo: each byte sent comes back once from the line discipline.
type ptyCat struct {
	in  io.Writer
	out io.Reader
	s   *ssh.Session
}

func startCat(b testing.TB, c *ssh.Client) *ptyCat {
	b.Helper()
	s, err := c.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		b.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Start("stty raw -echo; echo READY; cat"); err != nil {
		b.Fatal(err)
	}
	p := &ptyCat{in: in, out: out, s: s}
	var seen []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(seen, []byte("READY")) {
		n, err := out.Read(buf)
		if err != nil {
			b.Fatalf("waiting for cat: %v (%q)", err, seen)
		}
		seen = append(seen, buf[:n]...)
	}
	return p
}

// roundTrip sends one byte and waits for cat to send it back.
func (p *ptyCat) roundTrip(b testing.TB) time.Duration {
	var one [1]byte
	start := time.Now()
	p.in.Write([]byte{'x'})
	for {
		n, err := p.out.Read(one[:])
		if err != nil {
			b.Fatal(err)
		}
		if n == 1 && one[0] == 'x' {
			return time.Since(start)
		}
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func BenchmarkEcho(b *testing.B) {
	e := newEnv(b, envOptions{})
	e.addUser("alice", "agent", "t1")
	s := e.newSession("alice", "shell", time.Hour)
	alice := e.certFor("alice")
	viaBastion := startCat(b, e.goClient(b, alice, s.ID))
	viaHub := startCat(b, e.hubClient(b, s.ID, "alice"))
	for range 200 { // warm up
		viaBastion.roundTrip(b)
		viaHub.roundTrip(b)
	}
	b.ResetTimer()
	var bd, hd []time.Duration
	for i := 0; i < b.N; i++ {
		bd = append(bd, viaBastion.roundTrip(b))
		hd = append(hd, viaHub.roundTrip(b))
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(pct(hd, 0.5)), "hub-p50-µs")
	b.ReportMetric(us(pct(hd, 0.99)), "hub-p99-µs")
	b.ReportMetric(us(pct(bd, 0.5)), "bastion-p50-µs")
	b.ReportMetric(us(pct(bd, 0.99)), "bastion-p99-µs")
	b.ReportMetric(us(pct(bd, 0.99)-pct(hd, 0.99)), "added-p99-µs")
	b.ReportMetric(us(pct(bd, 0.5)-pct(hd, 0.5)), "added-p50-µs")
}

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func BenchmarkShells(b *testing.B) {
	shells := envInt("SG_BENCH_SHELLS", 500)
	nsess := min(envInt("SG_BENCH_SESSIONS", 10), shells)
	e := newEnv(b, envOptions{})
	e.addUser("alice", "agent", "t1")
	alice := e.certFor("alice")
	var ids []string
	for range nsess {
		ids = append(ids, e.newSession("alice", "shell", time.Hour).ID)
	}
	open := func(dial func(id string) *ssh.Client) (per float64, took time.Duration, closeAll func()) {
		base := heapNow()
		start := time.Now()
		var clients []*ssh.Client
		var cats []*ptyCat
		for i := range shells {
			c := dial(ids[i%len(ids)])
			clients = append(clients, c)
			cats = append(cats, startCat(b, c))
		}
		for _, p := range cats { // every shell answers
			p.roundTrip(b)
		}
		took = time.Since(start)
		per = float64(heapNow()-base) / float64(shells)
		return per, took, func() {
			for _, c := range clients {
				c.Close()
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hubPer, _, closeHub := open(func(id string) *ssh.Client { return e.hubClient(b, id, "alice") })
		closeHub()
		waitFor(10*time.Second, func() bool { return e.b.Conns() == 0 })
		bPer, took, closeB := open(func(id string) *ssh.Client { return e.goClient(b, alice, id) })
		conns := e.b.Conns()
		closeB()
		b.ReportMetric(float64(shells), "shells")
		b.ReportMetric(float64(conns), "bastion-conns")
		b.ReportMetric(hubPer/1024, "hub-KiB/shell")
		b.ReportMetric(bPer/1024, "bastion-path-KiB/shell")
		b.ReportMetric((bPer-hubPer)/1024, "bastion-added-KiB/shell")
		b.ReportMetric(took.Seconds(), "open-all-s")
	}
}
