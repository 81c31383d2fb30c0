package main

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/tierkv/tierkv/tiered"
)

// demoStream is the demo's input: a seeded, replayable stream of events,
// each naming one key. Event i is a pure function of (seed, i), so a worker
// can replay from any offset without reading what came before.
type demoStream struct {
	seed   uint64
	keys   int
	events int64
}

// keyIndex returns the key of event i as an index in [0, keys). The
// distribution is skewed (a quadratic transform of a uniform draw): low
// indices are hot, as in a real keyed stream.
func (d demoStream) keyIndex(i int64) int {
	u := splitmix64(d.seed ^ (uint64(i) * 0x9e3779b97f4a7c15))
	f := float64(u>>11) / (1 << 53) // uniform in [0, 1)
	return min(int(f*f*float64(d.keys)), d.keys-1)
}

// key renders key index k.
func (d demoStream) key(k int) []byte {
	return fmt.Appendf(nil, "key-%06d", k)
}

// expected computes the final counts from scratch, without any store.
func (d demoStream) expected() []int64 {
	counts := make([]int64, d.keys)
	for i := int64(0); i < d.events; i++ {
		counts[d.keyIndex(i)]++
	}
	return counts
}

// apply processes event i: it increments the key's counter in s.
func (d demoStream) apply(s *tiered.Store, i int64) error {
	k := d.key(d.keyIndex(i))
	v, found, err := s.Get(k)
	if err != nil {
		return fmt.Errorf("get %s: %w", k, err)
	}
	var n int64
	if found {
		if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return fmt.Errorf("counter %s holds %q, not a number", k, v)
		}
	}
	if err := s.Set(k, strconv.AppendInt(nil, n+1, 10)); err != nil {
		return fmt.Errorf("set %s: %w", k, err)
	}
	return nil
}

// check compares the counters in s with a computation from scratch and
// returns the number of keys that differ and the first difference.
func (d demoStream) check(s *tiered.Store) (bad int, first string, err error) {
	for k, want := range d.expected() {
		key := d.key(k)
		v, found, err := s.Get(key)
		if err != nil {
			return 0, "", fmt.Errorf("get %s: %w", key, err)
		}
		var got int64
		if found {
			if got, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				got = math.MinInt64
			}
		}
		if got != want || (want == 0 && found) {
			if bad == 0 {
				first = fmt.Sprintf("%s: store has %q (found=%v), recomputation gives %d", key, v, found, want)
			}
			bad++
		}
	}
	return bad, first, nil
}

// splitmix64 is the SplitMix64 mixing function.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// process applies events [from, to) to s and takes a snapshot, with the
// offset of the next event as metadata "offset", after every event whose
// offset is a multiple of every. onSnapshot reports each snapshot.
func (d demoStream) process(ctx context.Context, s *tiered.Store, from, to, every int64,
	onSnapshot func(offset int64, res tiered.SnapshotResult)) error {
	for i := from; i < to; i++ {
		if err := d.apply(s, i); err != nil {
			return fmt.Errorf("process event %d: %w", i, err)
		}
		if next := i + 1; next%every == 0 {
			if err := d.snapshot(ctx, s, next, onSnapshot); err != nil {
				return err
			}
		}
	}
	return nil
}

// snapshot commits the state of s with the input offset in its metadata.
func (d demoStream) snapshot(ctx context.Context, s *tiered.Store, offset int64,
	onSnapshot func(offset int64, res tiered.SnapshotResult)) error {
	res, err := s.Snapshot(ctx, tiered.WithMetadata(map[string]string{
		demoOffsetKey: strconv.FormatInt(offset, 10),
	}))
	if err != nil {
		return fmt.Errorf("snapshot at offset %d: %w", offset, err)
	}
	onSnapshot(offset, res)
	return nil
}

// demoOffsetKey is the metadata key holding the input offset of a version:
// the index of the first event its state does not include.
const demoOffsetKey = "offset"

// offsetOf reads the input offset recorded with a version (0 without one).
func offsetOf(md map[string]string) (int64, error) {
	s, ok := md[demoOffsetKey]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("metadata %s=%q is not an input offset", demoOffsetKey, s)
	}
	return n, nil
}
