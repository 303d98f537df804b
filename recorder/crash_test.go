package recorder_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"supportgate/recorder"
	"supportgate/recorder/recordertest"
)

const (
	crashEnvPath = "RECORDER_CRASH_WRITER_PATH"
	crashEnvSeed = "RECORDER_CRASH_WRITER_SEED"
)

// TestCrashWriterHelper is the writer subprocess of TestSIGKILL. It writes
// records forever with the real clock and reports on stdout how many are
// flushed to the file.
func TestCrashWriterHelper(t *testing.T) {
	path := os.Getenv(crashEnvPath)
	if path == "" {
		t.Skip("helper process for TestSIGKILL")
	}
	k := recordertest.FixedKeys(t, os.Getenv(crashEnvSeed), crashIdentity)
	cfg := recordertest.Config(k, recordertest.NewClock(time.Now()))
	cfg.Now = time.Now
	cfg.Start = time.Time{}
	cfg.CheckpointInterval = 50 * time.Millisecond
	cfg.FlushInterval = 20 * time.Millisecond
	w, err := recorder.Create(path, cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 1; ; i++ {
		w.Output([]byte(fmt.Sprintf("line %d\r\n", i)))
		if i%50 == 0 {
			if err := w.Flush(); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Printf("flushed %d\n", i)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// crashIdentity is a throwaway key used only by this test.
const crashIdentity = "AGE-SECRET-KEY-123ZGWK5EXG6R7SL8ATMJKNMM5RGHXYZPSDF7NG4K856QZ9HDJZ9QUUSY3S"

// TestSIGKILL kills a writer subprocess mid-recording and checks that
// everything flushed before the kill reads back and verifies, and that the
// recording is reported as cut short.
func TestSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "killed.sgrec")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriterHelper$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvSeed+"=crash")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	flushed := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			t.Fatal(line)
		}
		if n, ok := strings.CutPrefix(line, "flushed "); ok {
			flushed, _ = strconv.Atoi(n)
			if flushed >= 500 {
				break
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if flushed < 500 {
		t.Fatalf("writer flushed only %d records", flushed)
	}

	rep, err := recorder.VerifyFile(path)
	var ce *recorder.CutShortError
	if !errors.As(err, &ce) {
		t.Fatalf("verify: got %v, want cut short", err)
	}
	if rep.Complete || rep.Signed == 0 {
		t.Errorf("report: got complete=%v signed=%d, want cut short with signed checkpoints", rep.Complete, rep.Signed)
	}
	k := recordertest.FixedKeys(t, "crash", crashIdentity)
	recs, err := recordertest.ReadAll(t, path, k.Identity)
	if !errors.Is(err, recorder.ErrCutShort) {
		t.Fatalf("read: got %v, want ErrCutShort", err)
	}
	var out2 bytes.Buffer
	for _, r := range recs {
		if r.Type == recorder.TypeOutput {
			out2.Write(r.Data)
		}
	}
	for i := 1; i <= flushed; i++ {
		if !bytes.Contains(out2.Bytes(), []byte(fmt.Sprintf("line %d\r\n", i))) {
			t.Fatalf("line %d of %d flushed lines missing after the kill", i, flushed)
		}
	}
}
