package gateway

import (
	"sync"
	"time"
)

// Rate limits, per client address unless noted. Each is a token bucket:
// burst requests at once, refilled at rate per second.
var (
	loginLimit   = bucketSpec{burst: 10, rate: 10.0 / 60} // 10 a minute per address
	consentLimit = bucketSpec{burst: 30, rate: 1}         // per consent link, all its routes
	probeLimit   = bucketSpec{burst: 20, rate: 0.2}       // per address, requests for unknown consent links
	enrollLimit  = bucketSpec{burst: 5, rate: 5.0 / 60}
)

// maxBuckets bounds memory: past it the oldest idle buckets are dropped.
const maxBuckets = 100_000

type bucketSpec struct {
	burst float64
	rate  float64
}

type bucket struct {
	tokens float64
	at     time.Time
}

// limits holds token buckets keyed by limit name and client.
type limits struct {
	now     func() time.Time
	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

func newLimits(now func() time.Time) *limits {
	return &limits{now: now, buckets: map[string]*bucket{}}
}

// allow takes one token from the bucket of key, reporting false when empty.
func (l *limits) allow(spec bucketSpec, key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.pruneLocked(now)
		}
		b = &bucket{tokens: spec.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(spec.burst, b.tokens+now.Sub(b.at).Seconds()*spec.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// peek reports whether the bucket of key has a token, without taking it.
func (l *limits) peek(spec bucketSpec, key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return true
	}
	return min(spec.burst, b.tokens+now.Sub(b.at).Seconds()*spec.rate) >= 1
}

// pruneLocked drops buckets idle for over ten minutes (full again by then
// for every spec above), or all of them if that frees nothing.
func (l *limits) pruneLocked(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.at) > 10*time.Minute {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
