package gateway

import (
	"net/netip"
	"sync"
	"time"
)

// Rate limits, per client address unless noted. Each is a token bucket:
// burst requests at once, refilled at rate per second. A client address
// is keyed by limitAddr, so an IPv6 host counts as its whole /64.
var (
	loginLimit   = bucketSpec{burst: 10, rate: 10.0 / 60} // 10 a minute per address
	consentLimit = bucketSpec{burst: 30, rate: 1}         // per consent link, all its routes
	probeLimit   = bucketSpec{burst: 20, rate: 0.2}       // per address, requests for unknown consent links
	enrollLimit  = bucketSpec{burst: 5, rate: 5.0 / 60}
)

// maxBuckets bounds memory. When a new key finds the map full,
// evictLocked drops the least restrictive tenth of it (evictChunk).
const (
	maxBuckets = 100_000
	evictChunk = maxBuckets / 10
)

// evictBins is the resolution at which eviction ranks buckets by how full
// they are: buckets whose fill differs by less than 1/evictBins of their
// burst are ties.
const evictBins = 1024

type bucketSpec struct {
	burst float64
	rate  float64
}

// bucket is kept small (32 bytes) because eviction reads all of them.
type bucket struct {
	spec   bucketSpec
	tokens float64 // as of at
	at     int64   // last allow, in Unix nanoseconds
}

// fill is the fraction of its burst that b holds at now, in [0, 1]. At 1
// the bucket restricts nobody: dropping it changes nothing.
func (b bucket) fill(now int64) float64 {
	return b.refilled(b.spec, now) / b.spec.burst
}

// refilled is the number of tokens b holds at now (Unix nanoseconds)
// under spec.
func (b bucket) refilled(spec bucketSpec, now int64) float64 {
	elapsed := float64(max(0, now-b.at)) / 1e9
	return min(spec.burst, b.tokens+elapsed*spec.rate)
}

// limits holds token buckets keyed by limit name and client. They are
// stored by value so that eviction reads the map's memory in order rather
// than chasing a pointer per bucket.
type limits struct {
	now     func() time.Time
	mu      sync.Mutex // guards buckets
	buckets map[string]bucket
}

func newLimits(now func() time.Time) *limits {
	return &limits{now: now, buckets: map[string]bucket{}}
}

// allow takes one token from the bucket of key, reporting false when empty.
func (l *limits) allow(spec bucketSpec, key string) bool {
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.evictLocked(now)
		}
		b = bucket{tokens: spec.burst, at: now}
	}
	b.spec = spec
	b.tokens = b.refilled(spec, now)
	b.at = now
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	l.buckets[key] = b
	return allowed
}

// peek reports whether the bucket of key has a token, without taking it.
func (l *limits) peek(spec bucketSpec, key string) bool {
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return true
	}
	return b.refilled(spec, now) >= 1
}

// evictLocked drops at least evictChunk buckets, least restrictive first,
// so that a flood of new keys cannot reset the bucket of a client being
// throttled while others restrict nobody. Buckets that have refilled to
// their burst go first, all of them, since they are the same as no
// bucket; then those with the highest fill, ranked in evictBins bins (a
// bucket selection: one pass counts, a second deletes).
//
// Cost: two passes over at most maxBuckets buckets plus evictBins, and
// it leaves at most maxBuckets-evictChunk, so it runs at most once per
// evictChunk inserts. Amortised, an insert visits at most
// 2*maxBuckets/evictChunk + evictBins/evictChunk, about 20, buckets,
// whatever the keys and timing an attacker picks. The lock is held for
// the whole eviction: about 15 ms on a loaded 2-core machine, once per
// evictChunk new keys (BenchmarkLimitsFull).
func (l *limits) evictLocked(now int64) {
	bin := func(fill float64) int {
		return min(evictBins-1, max(0, int(fill*evictBins)))
	}
	var count [evictBins]int
	freed := 0
	for k, b := range l.buckets {
		f := b.fill(now)
		if f >= 1 {
			delete(l.buckets, k)
			freed++
			continue
		}
		count[bin(f)]++
	}
	need := evictChunk - freed
	if need <= 0 {
		return
	}
	// Find the threshold bin: everything above it goes, and from it as many
	// as are still needed.
	cut, above := evictBins-1, 0
	for ; cut > 0 && above+count[cut] < need; cut-- {
		above += count[cut]
	}
	fromCut := need - above
	for k, b := range l.buckets {
		if need == 0 {
			break
		}
		switch i := bin(b.fill(now)); {
		case i > cut:
			delete(l.buckets, k)
			need--
		case i == cut && fromCut > 0:
			delete(l.buckets, k)
			need--
			fromCut--
		}
	}
}

// limitAddr is the part of a client IP address that per-address limits
// key on: an IPv4 address whole (IPv4-mapped IPv6 too), and an IPv6
// address as its /64, since one host is given at least a /64 and can
// rotate through all of it. Anything unparseable is returned unchanged.
func limitAddr(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
