package objstore

import (
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: time.Second}
	for n := 1; n <= 200; n++ {
		limit := b.Max
		if n <= 7 {
			limit = b.Base << (n - 1) // 10ms..640ms
		}
		for range 50 {
			if d := b.sleep(n); d < 0 || d > limit {
				t.Fatalf("sleep(%d) = %s outside [0, %s]", n, d, limit)
			}
		}
	}
	// Full jitter: the sleeps are spread out, not all at the cap.
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[b.sleep(10)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct sleeps in 100", len(seen))
	}
	if d := (Backoff{Base: 1, Max: 1 << 62}).sleep(100); d < 0 || d > 1<<62 {
		t.Fatalf("overflowing cap: %s", d)
	}
	if d := (Backoff{}).EnsureDefaults(); d.MaxAttempts != DefaultMaxAttempts || d.Base != DefaultBaseBackoff || d.Max != DefaultMaxBackoff {
		t.Fatalf("defaults: %+v", d)
	}
}
