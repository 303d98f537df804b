package gateway

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeNow is a clock for limits that moves only when told.
type fakeNow struct{ t time.Time }

func (c *fakeNow) now() time.Time          { return c.t }
func (c *fakeNow) advance(d time.Duration) { c.t = c.t.Add(d) }

// ipv4 returns a distinct IPv4 address for each i below 2^24.
func ipv4(i int) string {
	return "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
}

// TestLimitSurvivesFlood: a throttled address stays throttled after more
// than maxBuckets other addresses made a request each, which used to
// clear the map and hand the attacker a fresh burst.
func TestLimitSurvivesFlood(t *testing.T) {
	clk := &fakeNow{t: time.Unix(1_700_000_000, 0)}
	l := newLimits(clk.now)
	target := "login:203.0.113.7"
	for i := range int(loginLimit.burst) {
		if !l.allow(loginLimit, target) {
			t.Fatalf("attempt %d: got refused, want allowed", i)
		}
	}
	if l.allow(loginLimit, target) {
		t.Fatal("attempt past the burst: got allowed, want refused")
	}
	// The flood takes five seconds: the target refills less than a token.
	for i := range maxBuckets + maxBuckets/10 {
		clk.advance(50 * time.Microsecond)
		l.allow(loginLimit, "login:"+ipv4(i))
	}
	if l.allow(loginLimit, target) {
		t.Fatal("after the flood: got allowed, want still refused")
	}
}

// TestLimitEvictionOrder fills the map with buckets of four kinds, then
// floods it with throttled newcomers: buckets back at their burst go
// first, then the fullest, and throttled ones never while others remain.
// The map never holds more than maxBuckets.
func TestLimitEvictionOrder(t *testing.T) {
	clk := &fakeNow{t: time.Unix(1_700_000_000, 0)}
	l := newLimits(clk.now)
	// Each kind of bucket has used uses of loginLimit's ten tokens. They
	// are listed in the order they should be evicted.
	kinds := []struct {
		prefix string
		n      int
		uses   int
	}{
		{"idle:", 3_000, 1}, // full again after the hour below
		{"high:", 60_000, 1},
		{"half:", 36_900, 5},
		{"throttled:", 100, 10},
	}
	use := func(key string, n int) {
		for range n {
			l.allow(loginLimit, key)
		}
	}
	create := func(i int) {
		k := kinds[i]
		for j := range k.n {
			use(k.prefix+strconv.Itoa(j), k.uses)
		}
	}
	create(0)
	clk.advance(time.Hour)
	for i := 1; i < len(kinds); i++ {
		create(i)
	}
	if got := len(l.buckets); got != maxBuckets {
		t.Fatalf("after filling: got %d buckets, want %d", got, maxBuckets)
	}
	counts := func() []int {
		c := make([]int, len(kinds))
		for k := range l.buckets {
			for i, kd := range kinds {
				if strings.HasPrefix(k, kd.prefix) {
					c[i]++
				}
			}
		}
		return c
	}
	// Newcomers are throttled too, so they rank with the throttled kind.
	evictions := 0
	for i := range 7 * evictChunk {
		before := len(l.buckets)
		use("new:"+strconv.Itoa(i), 10)
		after := len(l.buckets)
		if after > maxBuckets {
			t.Fatalf("newcomer %d: got %d buckets, want at most %d", i, after, maxBuckets)
		}
		if after == before+1 {
			continue
		}
		evictions++
		if got, want := after, maxBuckets-evictChunk+1; got > want {
			t.Fatalf("eviction %d: got %d buckets after it, want at most %d", evictions, got, want)
		}
		// A kind may have lost buckets only if every kind listed before it
		// is gone.
		c := counts()
		for j, kd := range kinds {
			if c[j] == kd.n {
				continue
			}
			for e := range j {
				if c[e] != 0 {
					t.Fatalf("eviction %d: %s lost %d buckets while %d %s remain", evictions, kd.prefix, kd.n-c[j], c[e], kinds[e].prefix)
				}
			}
		}
	}
	// 7 evictions of evictChunk: the 3,000 idle, all 60,000 high, then
	// 7,000 of the half-used; none of the throttled.
	c := counts()
	want := []int{0, 0, 36_900 - 7_000, 100}
	for i := range kinds {
		if c[i] != want[i] {
			t.Errorf("%s: got %d buckets, want %d", kinds[i].prefix, c[i], want[i])
		}
	}
	if evictions != 7 {
		t.Errorf("got %d evictions, want 7", evictions)
	}
	for j := range 100 {
		if l.allow(loginLimit, "throttled:"+strconv.Itoa(j)) {
			t.Fatalf("throttled:%d: got allowed, want still refused", j)
		}
	}
}

func TestLimitAddr(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"::ffff:c000:201", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"2001:DB8:1:2::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"", ""},
		{"not an address", "not an address"},
		{"[2001:db8::1]", "[2001:db8::1]"},
		{"192.0.2.1:443", "192.0.2.1:443"},
		{"@", "@"},
		{"1.2.3.4.5", "1.2.3.4.5"},
	}
	for _, tt := range tests {
		if got := limitAddr(tt.in); got != tt.want {
			t.Errorf("limitAddr(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestLimitIPv6Prefix: addresses in one /64 share a bucket; another /64,
// or an IPv4 address, has its own.
func TestLimitIPv6Prefix(t *testing.T) {
	l := newLimits((&fakeNow{t: time.Unix(1_700_000_000, 0)}).now)
	for i := range int(loginLimit.burst) {
		ip := "2001:db8:1:2::" + strconv.FormatInt(int64(i+1), 16)
		if !l.allow(loginLimit, "login:"+limitAddr(ip)) {
			t.Fatalf("%s: got refused, want allowed", ip)
		}
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"2001:db8:1:2:dead:beef:0:1", false},
		{"2001:db8:1:2::1%eth0", false},
		{"2001:db8:1:3::1", true},
		{"192.0.2.1", true},
		{"::ffff:192.0.2.1", true},
	}
	for _, tt := range tests {
		if got := l.allow(loginLimit, "login:"+limitAddr(tt.ip)); got != tt.want {
			t.Errorf("%s: got allowed %v, want %v", tt.ip, got, tt.want)
		}
	}
}

func FuzzLimitAddr(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "fe80::1%eth0", "", "x", "[::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := limitAddr(s)
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			if got != s {
				t.Fatalf("limitAddr(%q): got %q, want it unchanged", s, got)
			}
		case a.Unmap().Is4():
			if got != a.Unmap().String() {
				t.Fatalf("limitAddr(%q): got %q, want %q", s, got, a.Unmap())
			}
		default:
			// Any address of the same /64 gives the same key.
			b := a.As16()
			for i := 8; i < 16; i++ {
				b[i] = ^b[i]
			}
			if other := limitAddr(netip.AddrFrom16(b).String()); got != other {
				t.Fatalf("limitAddr(%q): got %q, but %q for the same /64", s, got, other)
			}
		}
	})
}

// BenchmarkLimitsFull measures allow for a new key with the map full of
// distinct keys, the case that evicts, against allow for a new key while
// the map has room, measured first in the same run.
func BenchmarkLimitsFull(b *testing.B) {
	clk := &fakeNow{t: time.Unix(1_700_000_000, 0)}
	// Baseline: inserts into a map with room.
	base := newLimits(clk.now)
	start := time.Now()
	for i := range maxBuckets / 2 {
		base.allow(loginLimit, "login:"+strconv.Itoa(i))
	}
	baseline := float64(time.Since(start).Nanoseconds()) / float64(maxBuckets/2)

	l := newLimits(clk.now)
	for i := range maxBuckets {
		l.allow(loginLimit, "login:"+strconv.Itoa(i))
	}
	i := maxBuckets
	start = time.Now()
	for b.Loop() {
		l.allow(loginLimit, "login:"+strconv.Itoa(i))
		i++
	}
	if len(l.buckets) > maxBuckets {
		b.Fatalf("got %d buckets, want at most %d", len(l.buckets), maxBuckets)
	}
	perOp := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportMetric(baseline, "ns/insert-with-room")
	b.ReportMetric(perOp/baseline, "x-with-room")
}
