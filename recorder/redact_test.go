package recorder

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

func TestCardRedaction(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   string
		count  int
	}{
		{"visa spaces", []string{"card 4111 1111 1111 1111 ok"}, "card **** **** **** 1111 ok", 1},
		{"mastercard dashes", []string{"5500-0000-0000-0004\r\n"}, "****-****-****-0004\r\n", 1},
		{"amex plain", []string{"378282246310005"}, "***********0005", 1},
		{"visa 13 digits", []string{"x4222222222222y"}, "x*********2222y", 1},
		{"luhn fails", []string{"4111 1111 1111 1112"}, "4111 1111 1111 1112", 0},
		{"too long", []string{"41111111111111111111111"}, "41111111111111111111111", 0},
		{"date and time", []string{"2026-03-01 12:00:00 pid 12345"}, "2026-03-01 12:00:00 pid 12345", 0},
		{"split across writes", []string{"pay 4111 11", "11 1111 ", "1111\n"}, "pay **** **** **** 1111\n", 1},
		{"byte by byte", strings.Split("4111111111111111.", ""), "************1111.", 1},
		{"escape codes", []string{"\x1b[31m4111\x1b[0m 1111 \x1b[1m1111\x1b[0m 1111"},
			"\x1b[31m****\x1b[0m **** \x1b[1m****\x1b[0m 1111", 1},
		{"split inside escape", []string{"\x1b[3", "1m41111111", "\x1b[0", "m11111111 "},
			"\x1b[31m********\x1b[0m****1111 ", 1},
		{"card followed by expiry", []string{"4111 1111 1111 1111 12 29"}, "**** **** **** 1111 12 29", 1},
		{"two cards", []string{"4111111111111111,5500000000000004"}, "************1111,************0004", 2},
		{"osc title with digits", []string{"\x1b]0;4111111111111111\x07ok"}, "\x1b]0;4111111111111111\x07ok", 0},
		{"string ended by esc", []string{"\x1bP\x1b[0m4111 1111 1111 1111"}, "\x1bP\x1b[0m**** **** **** 1111", 1},
		{"string ended by esc, split", []string{"\x1b_x\x1b", "[1m4111111111111111\r\n"}, "\x1b_x\x1b[1m************1111\r\n", 1},
		{"double separator breaks", []string{"4111  1111 1111 1111"}, "4111  1111 1111 1111", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newStreamRedactor(RedactConfig{})
			var out []byte
			for _, c := range tt.chunks {
				out = r.process(out, []byte(c))
			}
			out = r.flush(out)
			if string(out) != tt.want {
				t.Errorf("got %q, want %q", out, tt.want)
			}
			if r.count() != tt.count {
				t.Errorf("count: got %d, want %d", r.count(), tt.count)
			}
		})
	}
}

func TestPatternRedaction(t *testing.T) {
	cfg := RedactConfig{Patterns: []*regexp.Regexp{regexp.MustCompile(`password=\S+`), regexp.MustCompile(`AKIA[0-9A-Z]{16}`)}}
	r := newStreamRedactor(cfg)
	var out []byte
	for _, c := range []string{"login password=hun", "ter2 ok\nkey AKIAABCDEFGHIJKLMNOP\n", "tail"} {
		out = r.process(out, []byte(c))
	}
	out = r.flush(out)
	want := "login **************** ok\nkey ********************\ntail"
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if r.count() != 2 {
		t.Errorf("count: got %d, want 2", r.count())
	}
	text, n := redactText(cfg, "my card is 4111-1111-1111-1111, password=x")
	if text != "my card is ****-****-****-1111, **********" || n != 2 {
		t.Errorf("chat: got %q (%d)", text, n)
	}
}

// TestRedactorHeld: after any write, what is released plus what held
// says is held back is what a flush at that point releases, and asking
// changes nothing: the stream goes on redacted as before.
func TestRedactorHeld(t *testing.T) {
	pats := RedactConfig{Patterns: []*regexp.Regexp{regexp.MustCompile(`password=\S+`)}}
	tests := []struct {
		cfg    RedactConfig
		chunks []string
		want   string
		count  int
	}{
		{RedactConfig{}, []string{"pay 4111 11", "11 1111 ", "1111", "\n"}, "pay **** **** **** 1111\n", 1},
		{RedactConfig{}, []string{"\x1b[3", "1m41111111", "\x1b[0", "m11111111 "}, "\x1b[31m********\x1b[0m****1111 ", 1},
		{pats, []string{"login password=hun", "ter2 ok\n$ ", "4111 1111 1111 1111", " x\n"},
			"login **************** ok\n$ **** **** **** 1111 x\n", 2},
	}
	for _, tt := range tests {
		r := newStreamRedactor(tt.cfg)
		var out []byte
		var prefix string
		for _, c := range tt.chunks {
			out = r.process(out, []byte(c))
			prefix += c
			ref := newStreamRedactor(tt.cfg)
			want := ref.flush(ref.process(nil, []byte(prefix)))
			if got := string(out) + string(r.held(nil)); got != string(want) {
				t.Errorf("after %q: released and held %q, want %q", prefix, got, want)
			}
		}
		if out = r.flush(out); string(out) != tt.want {
			t.Errorf("%q: got %q, want %q", tt.chunks, out, tt.want)
		}
		if r.count() != tt.count {
			t.Errorf("%q: count %d, want %d", tt.chunks, r.count(), tt.count)
		}
	}
}

func FuzzCardRedactor(f *testing.F) {
	f.Add([]byte("4111 1111 1111 1111"), 3)
	f.Add([]byte("\x1b[31m4111\x1b[0m 1111 1111 1111\x1b]0;x\x07"), 5)
	f.Fuzz(func(t *testing.T, p []byte, split int) {
		whole := newStreamRedactor(RedactConfig{})
		a := whole.flush(whole.process(nil, p))
		parts := newStreamRedactor(RedactConfig{})
		var b []byte
		step := 1 + abs(split)%7
		for i := 0; i < len(p); i += step {
			b = parts.process(b, p[i:min(i+step, len(p))])
		}
		b = parts.flush(b)
		if string(a) != string(b) {
			t.Fatalf("split writes changed the result: %q vs %q", a, b)
		}
		if len(a) != len(p) {
			t.Fatalf("length changed: %d vs %d", len(a), len(p))
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// BenchmarkCardRedactor runs the card redactor over the writer benchmark's
// 16 KiB terminal writes; x-seal is the time of sealing the same bytes with
// ChaCha20-Poly1305, measured in the same run, over the redactor's time.
func BenchmarkCardRedactor(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cards bool
	}{{"plain", false}, {"cards", true}} {
		b.Run(bc.name, func(b *testing.B) {
			data := writerBenchText(bc.cards)
			aead, _ := chacha20poly1305.New(make([]byte, chacha20poly1305.KeySize))
			sealed := make([]byte, 0, len(data)+aead.Overhead())
			var nonce [chacha20poly1305.NonceSize]byte
			var seal time.Duration
			var r streamRedactor
			var out []byte
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for range b.N {
				out = r.process(out[:0], data)
			}
			b.StopTimer()
			start := time.Now()
			for range b.N {
				sealed = aead.Seal(sealed[:0], nonce[:], data, nil)
			}
			seal = time.Since(start)
			b.ReportMetric(seal.Seconds()/b.Elapsed().Seconds(), "x-seal")
		})
	}
}
