package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/objstore"
)

type statusCoder int

func (c statusCoder) Error() string   { return fmt.Sprintf("status %d", int(c)) }
func (c statusCoder) StatusCode() int { return int(c) }

type httpStatusCoder int

func (c httpStatusCoder) Error() string       { return fmt.Sprintf("http status %d", int(c)) }
func (c httpStatusCoder) HTTPStatusCode() int { return int(c) }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestRetryable(t *testing.T) {
	status := func(code int) error {
		return fmt.Errorf("put: %w", &objstore.StatusError{Op: "put", Key: "runs/x", Code: code, Err: errors.New("x")})
	}
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("something"), false},
		{context.Canceled, false},
		{fmt.Errorf("wrapped: %w", context.Canceled), false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("request: %w", context.DeadlineExceeded), true},
		{status(500), true}, {status(502), true}, {status(503), true},
		{status(429), true}, {status(409), true}, {status(408), true},
		{status(400), false}, {status(403), false}, {status(404), false},
		{fmt.Errorf("sdk: %w", statusCoder(503)), true},
		{fmt.Errorf("sdk: %w", statusCoder(401)), false},
		{fmt.Errorf("sdk: %w", httpStatusCoder(429)), true},
		{fmt.Errorf("sdk: %w", httpStatusCoder(412)), false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("write: %w", syscall.EPIPE), true},
		{io.ErrUnexpectedEOF, true},
		{io.EOF, false},
		{&url.Error{Op: "Put", URL: "http://127.0.0.1:9000/b/k", Err: io.EOF}, true},
		{&url.Error{Op: "Put", URL: "http://127.0.0.1:9000/b/k", Err: timeoutErr{}}, true},
		{&url.Error{Op: "Put", URL: "bad://x", Err: errors.New("unsupported protocol scheme")}, false},
		{&net.DNSError{Err: "no such host", Name: "nohost", IsNotFound: true}, false},
		{&net.DNSError{Err: "timeout", Name: "slow", IsTimeout: true}, true},
		{timeoutErr{}, true},
		{objstore.ErrNotExist, false},
		{fmt.Errorf("put: %w", objstore.ErrPrecondition), false},
		{objstore.ErrInvalidKey, false},
		{engines.Corruptf("f", 0, "bad"), false},
		{ErrMismatch, false},
		{ErrClosed, false},
		{os.ErrNotExist, false},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, false},
		{fmt.Errorf("head: %w", errVanished), true},
	}
	for _, c := range cases {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	o := Options{BaseBackoff: time.Microsecond, MaxBackoff: time.Microsecond, MaxAttempts: 5}
	transient := &objstore.StatusError{Op: "get", Key: "k", Code: 503, Err: errors.New("busy")}

	calls := 0
	err := Retry(ctx, o, func(context.Context) error {
		if calls++; calls < 3 {
			return transient
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Retry = %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	permanent := errors.New("permanent")
	err = Retry(ctx, o, func(context.Context) error { calls++; return permanent })
	if err != permanent || calls != 1 {
		t.Fatalf("permanent: %v after %d calls", err, calls)
	}

	calls = 0
	err = Retry(ctx, o, func(context.Context) error { calls++; return transient })
	if !errors.Is(err, transient) || calls != 5 {
		t.Fatalf("exhausted: %v after %d calls", err, calls)
	}

	// The caller's cancellation stops the loop, and the error says so.
	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = Retry(cctx, o, func(context.Context) error { calls++; cancel(); return transient })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, transient) || calls != 1 {
		t.Fatalf("canceled: %v after %d calls", err, calls)
	}
	// So does the caller's own deadline, although DeadlineExceeded is retryable.
	dctx, dcancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer dcancel()
	calls = 0
	err = Retry(dctx, o, func(ctx context.Context) error { calls++; return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
		t.Fatalf("deadline: %v after %d calls", err, calls)
	}
	// A canceled context interrupts a long backoff sleep.
	lctx, lcancel := context.WithCancel(ctx)
	slow := Options{BaseBackoff: time.Hour, MaxBackoff: time.Hour}
	calls = 0
	err = retry(lctx, slow.EnsureDefaults(), func(context.Context) error { calls++; return transient },
		func(int, error, time.Duration) { lcancel() })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("interrupted sleep: %v after %d calls", err, calls)
	}
}

func TestBackoffBounds(t *testing.T) {
	o := Options{BaseBackoff: 10 * time.Millisecond, MaxBackoff: time.Second}
	for n := 1; n <= 200; n++ {
		limit := o.MaxBackoff
		if n <= 7 {
			limit = o.BaseBackoff << (n - 1) // 10ms..640ms
		}
		for range 50 {
			if d := backoff(o, n); d < 0 || d > limit {
				t.Fatalf("backoff(%d) = %s outside [0, %s]", n, d, limit)
			}
		}
	}
	// Full jitter: the sleeps are spread out, not all at the cap.
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[backoff(o, 10)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct sleeps in 100", len(seen))
	}
	if d := backoff(Options{BaseBackoff: 1, MaxBackoff: 1 << 62}, 100); d < 0 || d > 1<<62 {
		t.Fatalf("overflowing cap: %s", d)
	}
}
