package audit_test

import (
	"context"
	"testing"
	"time"

	"supportgate/gateway/audit"
	"supportgate/gateway/audit/audittest"
)

// BenchmarkAppend measures Append on the in-memory store, alone and with
// parallel callers, and against a store that takes 100µs per call (an fsync)
// where group commit matters. Each sub-benchmark reports records/s and the
// mean number of records per store call.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		delay    time.Duration
		parallel bool
	}{
		{"mem/serial", 0, false},
		{"mem/parallel", 0, true},
		{"slow100us/serial", 100 * time.Microsecond, false},
		{"slow100us/parallel", 100 * time.Microsecond, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := &slowStore{Store: audittest.NewStore(), delay: bc.delay}
			l, err := audit.New(audit.Config{Store: s, Signer: testKey})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			e := event(1)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if bc.parallel {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := l.Append(ctx, e); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for range b.N {
					if _, err := l.Append(ctx, e); err != nil {
						b.Fatal(err)
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			s.mu.Lock()
			b.ReportMetric(float64(b.N)/float64(max(s.batches, 1)), "records/batch")
			s.mu.Unlock()
		})
	}
}
