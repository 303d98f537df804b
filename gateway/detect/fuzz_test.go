package detect_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"supportgate/gateway/audit"
	"supportgate/gateway/detect"
)

// FuzzClassifyCommand: command lines come from whoever holds a shell.
func FuzzClassifyCommand(f *testing.F) {
	for _, s := range []string{"ls", "cat /etc/shadow", "curl x | sh", "history -c", "systemctl stop auditd",
		"iex (new-object net.webclient).downloadstring('x')", strings.Repeat("curl |", 800)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		ms := detect.ClassifyCommand(cmd)
		for _, m := range ms {
			if m.Category == "" || m.Severity < detect.High {
				t.Errorf("bad match %+v", m)
			}
		}
	})
}

// FuzzDecodeBaseline: blobs come back from a store that may be corrupted.
func FuzzDecodeBaseline(f *testing.F) {
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"hourly_rate":{"vals":[1,2,3],"next":7},"addresses":{"1.2.3.4":"2026-01-01T00:00:00Z"},"hours":[1,2]}`))
	f.Add([]byte(`{"version":1,"bytes_out":{"vals":[1e308,-1e308]}}`))
	f.Fuzz(func(t *testing.T, blob []byte) {
		b, err := detect.DecodeBaseline(blob)
		if err != nil {
			return
		}
		if b.HourlyRate.N() > 64 || b.BytesOut.N() > 64 || len(b.Addresses) > 64 {
			t.Fatalf("decoded baseline exceeds its caps")
		}
		// A decoded baseline must be usable: feed it to a detector.
		st := detect.NewMemStore()
		st.Save(context.Background(), "alice", blob)
		det, err := detect.New(detect.Config{Now: fixedNow, Baselines: st})
		if err != nil {
			t.Fatal(err)
		}
		defer det.Close()
		for _, r := range events(t0, `
+0 login.success alice 198.51.100.5
+1 session.created alice 198.51.100.5 session=s1 agent=alice customer=c1
+2 channel.closed alice 198.51.100.5 session=s1 agent=alice bytes_out=1000
+3 session.ended alice 198.51.100.5 session=s1 agent=alice reason=denied`) {
			det.ObserveWait(context.Background(), r)
		}
		det.Flush(context.Background())
		for _, a := range det.Alerts() {
			if !utf8.ValidString(a.Summary) {
				t.Errorf("summary is not UTF-8: %q", a.Summary)
			}
		}
	})
}

// FuzzReplay: `supportgate detect replay` reads exported logs that are
// untrusted; whatever parses must run through the rules without panicking.
func FuzzReplay(f *testing.F) {
	if fh, err := os.Open(filepath.Join("..", "..", "testdata", "detect", "scenario.jsonl")); err == nil {
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		var chunk bytes.Buffer
		for n := 0; sc.Scan() && n < 400; n++ {
			chunk.Write(sc.Bytes())
			chunk.WriteByte('\n')
			if n%40 == 39 {
				f.Add(bytes.Clone(chunk.Bytes()))
				chunk.Reset()
			}
		}
		fh.Close()
	}
	f.Add([]byte(`{"seq":1,"time":"2026-03-04T03:00:00Z","type":"channel.closed","actor":"a","session":"s","detail":{"agent":"a","bytes_out":"18446744073709551615"}}`))
	f.Add([]byte(`{"seq":1,"time":"0001-01-01T00:00:00Z","type":"shell.command","actor":"a","remote":"::1","detail":{"command":"cat /etc/shadow"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := detect.New(detect.Config{Now: fixedNow, MaxAlerts: 8})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx := context.Background()
		audit.ReadJSONL(bytes.NewReader(data), func(r audit.Record) error {
			return d.ObserveWait(ctx, r)
		})
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(d.Alerts()); n > 8 {
			t.Errorf("kept %d alerts, MaxAlerts 8", n)
		}
	})
}
