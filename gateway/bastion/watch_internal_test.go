package bastion

import (
	"bytes"
	"testing"
)

// keysOf returns the watch keys in what a supervisor typed.
func keysOf(in []byte) []byte {
	var k watchKeys
	var out []byte
	for _, b := range in {
		if key := k.key(b); key != 0 {
			out = append(out, key)
		}
	}
	return out
}

func TestWatchKeys(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"keys", "]\t[?19", "nnp?19"},
		{"text is dropped", "echo hi; rm -rf /\r", ""},
		{"quit keys", "q\x03\x04Q", "qqq"},
		{"zero picks nothing", "0", ""},
		{"arrow keys", "\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA", ""},
		{"function and editing keys", "\x1b[15~\x1b[1;5C\x1b[3~\x1bOP", ""},
		{"alt and a key", "\x1b]\x1b[\x1b1", ""},
		{"escape twice, then a sequence", "\x1b\x1b[2~]", "n"},
		{"keys around sequences", "[\x1b[A]\x1b[5~2", "pn2"},
		{"an endless sequence ends", "\x1b[" + string(bytes.Repeat([]byte("1"), maxKeySeq)) + "]", "n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(keysOf([]byte(tt.in))); got != tt.want {
				t.Errorf("keys of %q: got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzWatchKeys: whatever a supervisor sends, the parser yields only
// the watch's keys, and after any input an arrow key is no key: the
// parser finds its way back to reading keys.
func FuzzWatchKeys(f *testing.F) {
	for _, s := range []string{"]\t[?19", "\x1b[A", "\x1b[15~", "\x1bOP", "\x1b\x1b", "\x1b[" + string(bytes.Repeat([]byte("9"), 40)), "echo x\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, k := range keysOf(in) {
			if k != keyNext && k != keyPrev && k != keyHelp && k != keyQuit && (k < '1' || k > '9') {
				t.Fatalf("keys of %q: %q is not a watch key", in, k)
			}
		}
		var k watchKeys
		for _, b := range in {
			k.key(b)
		}
		for _, b := range []byte("x\x1b[A") {
			if key := k.key(b); key != 0 {
				t.Fatalf("after %q, x and an arrow key gave %q", in, key)
			}
		}
		if key := k.key(']'); key != keyNext {
			t.Fatalf("after %q and an arrow key, ] gave %q, want next", in, key)
		}
	})
}

func TestStepChannels(t *testing.T) {
	st := &sessState{open: []int{2, 5, 9}}
	tests := []struct{ from, dir, want int }{
		{0, 1, 2}, {0, -1, 9},
		{2, 1, 5}, {5, 1, 9}, {9, 1, 2},
		{2, -1, 9}, {9, -1, 5},
		{3, 1, 5}, {3, -1, 2}, // a closed channel: its neighbours
		{10, 1, 2}, {10, -1, 9},
	}
	for _, tt := range tests {
		if got := st.stepLocked(tt.from, tt.dir); got != tt.want {
			t.Errorf("step from %d by %d in %v: got %d, want %d", tt.from, tt.dir, st.open, got, tt.want)
		}
	}
	if got := (&sessState{}).stepLocked(0, 1); got != 0 {
		t.Errorf("step with no channel open: got %d, want 0", got)
	}
}

func TestParseWatch(t *testing.T) {
	tests := []struct {
		cmd  string
		want int
		ok   bool
	}{
		{"watch", 0, true},
		{" watch  3 ", 3, true},
		{"watch 0", 0, false},
		{"watch -1", 0, false},
		{"watch 2147483648", 0, false},
		{"watch x", 0, false},
		{"watch 1 2", 0, false},
		{"cat /etc/passwd", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		if got, ok := parseWatch(tt.cmd); got != tt.want || ok != tt.ok {
			t.Errorf("parseWatch(%q): got %d, %v; want %d, %v", tt.cmd, got, ok, tt.want, tt.ok)
		}
	}
}
