// Package faultstore wraps an objstore.Store and injects failures, for
// tests of retry loops, the upload pipeline and the snapshot commit.
//
// # Rules
//
// A Store holds a list of Rules. Every call (Put, Get, GetRange, Head, List,
// Delete) is matched against them in order; the first rule that matches and
// fires decides the fault. A rule matches by operation and key prefix, lets
// its first Skip matches through, then fires on each further match with
// probability Prob (1 when Prob is 0), at most Times times (unlimited when
// 0). Randomness comes from the seed given to New, so a run replays exactly
// when the calls arrive in the same order.
//
// Scripted sweep, pebble style: for n := 0; ; n++ { s := New(inner, 1,
// faultstore.Rule{Skip: n, Times: 1, Kind: faultstore.Unavailable}); run the
// workload; stop when s.Injected() is empty }.
//
// # Kinds
//
//	InternalError, Unavailable, TooManyRequests, Conflict
//	    the call fails with an *objstore.StatusError (500, 503, 429, 409);
//	    nothing happens underneath.
//	Timeout   the call fails with an error whose Timeout() is true (it
//	          matches os.ErrDeadlineExceeded); nothing happens underneath.
//	Reset     Get and GetRange succeed, but the body fails with
//	          syscall.ECONNRESET after half of it; other calls fail up front.
//	Slow      the call is delayed by Options.SlowDelay, then runs normally.
//	Ambiguous the call runs underneath (a Put is stored, a Delete deletes),
//	          then the caller gets a timeout error anyway: the case a
//	          create-if-absent retry must recognise as its own success.
//
// Every injected error matches ErrInjected and is classified as worth
// retrying by objstore.Retryable.
package faultstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tierkv/tierkv/objstore"
)

// ErrInjected is matched (errors.Is) by every error the wrapper makes up.
var ErrInjected = errors.New("faultstore: injected fault")

// Op names a Store method.
type Op string

// The operations a Rule can select.
const (
	OpPut      Op = "put"
	OpGet      Op = "get"
	OpGetRange Op = "getrange"
	OpHead     Op = "head"
	OpList     Op = "list"
	OpDelete   Op = "delete"
)

// Kind is the kind of fault a Rule injects.
type Kind int

// The fault kinds; see the package documentation.
const (
	InternalError   Kind = iota + 1 // HTTP 500
	Unavailable                     // HTTP 503
	TooManyRequests                 // HTTP 429
	Conflict                        // HTTP 409 (S3 ConditionalRequestConflict)
	Timeout                         // no response
	Reset                           // connection reset, mid-body for reads
	Slow                            // delayed, then normal
	Ambiguous                       // done underneath, reported as a timeout
)

var kindNames = map[Kind]string{
	InternalError: "500", Unavailable: "503", TooManyRequests: "429", Conflict: "409",
	Timeout: "timeout", Reset: "reset", Slow: "slow", Ambiguous: "ambiguous",
}

// String returns a short name: "503", "timeout", "ambiguous", ...
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Rule selects calls and the fault they get.
type Rule struct {
	// Ops restricts the rule to these operations. Default: all.
	Ops []Op
	// KeyPrefix restricts the rule to keys (List: prefixes) starting with
	// it. Default: all.
	KeyPrefix string
	// Skip lets this many matching calls through before the rule may fire.
	Skip int
	// Times bounds how often the rule fires. Default (0): unlimited.
	Times int
	// Prob is the probability that a matching call past Skip fires.
	// Default (0): always.
	Prob float64
	// Kind is the fault to inject.
	Kind Kind
}

// Options tune a Store.
type Options struct {
	// SlowDelay is the delay of the Slow kind. Default: 20ms.
	SlowDelay time.Duration
}

// Event records one injected fault.
type Event struct {
	// N is the call's index among all calls, from 0.
	N    int
	Op   Op
	Key  string
	Kind Kind
}

// String formats the event as "#3 put runs/x 503".
func (e Event) String() string { return fmt.Sprintf("#%d %s %s %s", e.N, e.Op, e.Key, e.Kind) }

// Store is the fault-injecting wrapper. It is safe for concurrent use.
type Store struct {
	inner objstore.Store
	opts  Options

	mu struct {
		sync.Mutex
		rng      *rand.Rand
		rules    []ruleState
		calls    int
		injected []Event
	}
}

type ruleState struct {
	Rule
	matched, fired int
}

var _ objstore.Store = (*Store)(nil)

// New wraps inner with the given rules; seed drives the probabilistic ones.
func New(inner objstore.Store, seed uint64, rules ...Rule) *Store {
	return NewWithOptions(inner, seed, Options{}, rules...)
}

// NewWithOptions is New with Options.
func NewWithOptions(inner objstore.Store, seed uint64, opts Options, rules ...Rule) *Store {
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 20 * time.Millisecond
	}
	s := &Store{inner: inner, opts: opts}
	s.mu.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s.SetRules(rules...)
	return s
}

// FailNth returns a rule that fails the call with index n (from 0) among the
// calls matching ops (all when none are given) with kind, once.
func FailNth(n int, kind Kind, ops ...Op) Rule {
	return Rule{Ops: ops, Skip: n, Times: 1, Kind: kind}
}

// SetRules replaces the rules and restarts their counters; the call counter
// and the event log are kept.
func (s *Store) SetRules(rules ...Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.rules = s.mu.rules[:0]
	for _, r := range rules {
		s.mu.rules = append(s.mu.rules, ruleState{Rule: r})
	}
}

// Injected returns the faults injected so far, in order.
func (s *Store) Injected() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.mu.injected...)
}

// Calls returns the number of calls seen so far.
func (s *Store) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.calls
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() objstore.Store { return s.inner }

// decide returns the fault for one call, or 0.
func (s *Store) decide(op Op, key string) Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.mu.calls
	s.mu.calls++
	for i := range s.mu.rules {
		r := &s.mu.rules[i]
		if !r.matches(op, key) {
			continue
		}
		r.matched++
		if r.matched <= r.Skip || r.Times > 0 && r.fired >= r.Times {
			continue
		}
		if r.Prob > 0 && s.mu.rng.Float64() >= r.Prob {
			continue
		}
		r.fired++
		s.mu.injected = append(s.mu.injected, Event{N: n, Op: op, Key: key, Kind: r.Kind})
		return r.Kind
	}
	return 0
}

func (r *ruleState) matches(op Op, key string) bool {
	if !strings.HasPrefix(key, r.KeyPrefix) {
		return false
	}
	if len(r.Ops) == 0 {
		return true
	}
	for _, o := range r.Ops {
		if o == op {
			return true
		}
	}
	return false
}

// faultErr builds the error of kind for op on key.
func faultErr(op Op, key string, kind Kind) error {
	switch kind {
	case InternalError, Unavailable, TooManyRequests, Conflict:
		code := map[Kind]int{InternalError: 500, Unavailable: 503, TooManyRequests: 429, Conflict: 409}[kind]
		return &objstore.StatusError{Op: string(op), Key: key, Code: code, Err: ErrInjected}
	case Reset:
		return fmt.Errorf("faultstore: %s %s: %w: %w", op, key, ErrInjected, syscall.ECONNRESET)
	default: // Timeout, Ambiguous
		return fmt.Errorf("faultstore: %s %s: %w: %w", op, key, ErrInjected, os.ErrDeadlineExceeded)
	}
}

// before handles the faults that act before the call: it returns the error
// to report instead of calling through, or nil to call through.
func (s *Store) before(ctx context.Context, op Op, key string, kind Kind) error {
	switch kind {
	case 0, Ambiguous:
		return nil
	case Slow:
		t := time.NewTimer(s.opts.SlowDelay)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("faultstore: %s %s: %w", op, key, ctx.Err())
		}
	case Reset:
		if op == OpGet || op == OpGetRange {
			return nil
		}
	}
	return faultErr(op, key, kind)
}

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) error {
	kind := s.decide(OpPut, key)
	if err := s.before(ctx, OpPut, key, kind); err != nil {
		return err
	}
	if err := s.inner.Put(ctx, key, r, size, opts); err != nil {
		return err
	}
	if kind == Ambiguous {
		return faultErr(OpPut, key, kind)
	}
	return nil
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	kind := s.decide(OpGet, key)
	if err := s.before(ctx, OpGet, key, kind); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	rc, info, err := s.inner.Get(ctx, key)
	if err != nil {
		return nil, info, err
	}
	switch kind {
	case Ambiguous:
		rc.Close()
		return nil, objstore.ObjectInfo{}, faultErr(OpGet, key, kind)
	case Reset:
		return &resetReader{rc: rc, left: info.Size / 2, err: faultErr(OpGet, key, kind)}, info, nil
	}
	return rc, info, nil
}

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	kind := s.decide(OpGetRange, key)
	if err := s.before(ctx, OpGetRange, key, kind); err != nil {
		return nil, err
	}
	rc, err := s.inner.GetRange(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	switch kind {
	case Ambiguous:
		rc.Close()
		return nil, faultErr(OpGetRange, key, kind)
	case Reset:
		left := length / 2
		if length < 0 {
			left = 0
			if info, err := s.inner.Head(ctx, key); err == nil {
				left = max(0, info.Size-offset) / 2
			}
		}
		return &resetReader{rc: rc, left: left, err: faultErr(OpGetRange, key, kind)}, nil
	}
	return rc, nil
}

// Head implements objstore.Store.
func (s *Store) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	kind := s.decide(OpHead, key)
	if err := s.before(ctx, OpHead, key, kind); err != nil {
		return objstore.ObjectInfo{}, err
	}
	info, err := s.inner.Head(ctx, key)
	if err == nil && kind == Ambiguous {
		return objstore.ObjectInfo{}, faultErr(OpHead, key, kind)
	}
	return info, err
}

// List implements objstore.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	kind := s.decide(OpList, prefix)
	if err := s.before(ctx, OpList, prefix, kind); err != nil {
		return nil, err
	}
	infos, err := s.inner.List(ctx, prefix)
	if err == nil && kind == Ambiguous {
		return nil, faultErr(OpList, prefix, kind)
	}
	return infos, err
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	kind := s.decide(OpDelete, key)
	if err := s.before(ctx, OpDelete, key, kind); err != nil {
		return err
	}
	if err := s.inner.Delete(ctx, key); err != nil {
		return err
	}
	if kind == Ambiguous {
		return faultErr(OpDelete, key, kind)
	}
	return nil
}

// Close closes the wrapped store.
func (s *Store) Close() error { return s.inner.Close() }

// resetReader passes left bytes through, then fails with err.
type resetReader struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (r *resetReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, r.err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	if err == io.EOF {
		// The body was shorter than expected; the connection still "breaks".
		return n, r.err
	}
	return n, err
}

func (r *resetReader) Close() error { return r.rc.Close() }
