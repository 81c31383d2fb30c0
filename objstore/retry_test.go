package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
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
		{os.ErrDeadlineExceeded, true},
		{status(500), true}, {status(502), true}, {status(503), true},
		{status(429), true}, {status(409), true}, {status(408), true},
		{status(400), false}, {status(403), false}, {status(404), false},
		{fmt.Errorf("sdk: %w", statusCoder(503)), true},
		{fmt.Errorf("sdk: %w", statusCoder(401)), false},
		{fmt.Errorf("sdk: %w", httpStatusCoder(429)), true},
		{fmt.Errorf("sdk: %w", httpStatusCoder(412)), false},
		// No response: the code is 0 and the cause decides.
		{fmt.Errorf("sdk: %w: %w", httpStatusCoder(0), syscall.ECONNREFUSED), true},
		{fmt.Errorf("sdk: %w", httpStatusCoder(0)), false},
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
		{objstore.ErrInvalidURL, false},
		{fmt.Errorf("head: %w", objstore.ErrVanished), true},
		{engines.Corruptf("f", 0, "bad"), false},
		{os.ErrNotExist, false},
		{&os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, false},
	}
	for _, c := range cases {
		if got := objstore.Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	se := &objstore.StatusError{Op: "get", Key: "runs/x", Code: 503, Err: errors.New("boom")}
	if got := se.Error(); !strings.Contains(got, "503") || !strings.Contains(got, "runs/x") || !strings.HasPrefix(got, "objstore: ") {
		t.Errorf("StatusError.Error() = %q", got)
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	b := objstore.Backoff{Base: time.Microsecond, Max: time.Microsecond, MaxAttempts: 5}
	transient := &objstore.StatusError{Op: "get", Key: "k", Code: 503, Err: errors.New("busy")}

	calls := 0
	err := objstore.Retry(ctx, b, func(context.Context) error {
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
	err = objstore.Retry(ctx, b, func(context.Context) error { calls++; return permanent })
	if err != permanent || calls != 1 {
		t.Fatalf("permanent: %v after %d calls", err, calls)
	}

	calls = 0
	var hooked []int
	hb := b
	hb.OnRetry = func(attempt int, err error, sleep time.Duration) {
		if err != transient || sleep < 0 || sleep > b.Max {
			t.Errorf("OnRetry(%d, %v, %s)", attempt, err, sleep)
		}
		hooked = append(hooked, attempt)
	}
	err = objstore.Retry(ctx, hb, func(context.Context) error { calls++; return transient })
	if !errors.Is(err, transient) || calls != 5 || !strings.Contains(err.Error(), "giving up after 5 attempts") {
		t.Fatalf("exhausted: %v after %d calls", err, calls)
	}
	if fmt.Sprint(hooked) != "[1 2 3 4]" {
		t.Fatalf("OnRetry saw attempts %v, want [1 2 3 4]", hooked)
	}

	// The caller's cancellation stops the loop, and the error says so.
	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = objstore.Retry(cctx, b, func(context.Context) error { calls++; cancel(); return transient })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, transient) || calls != 1 {
		t.Fatalf("canceled: %v after %d calls", err, calls)
	}
	// So does the caller's own deadline, although DeadlineExceeded is retryable.
	dctx, dcancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer dcancel()
	calls = 0
	err = objstore.Retry(dctx, b, func(ctx context.Context) error { calls++; return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
		t.Fatalf("deadline: %v after %d calls", err, calls)
	}
	// A canceled context interrupts a long backoff sleep.
	lctx, lcancel := context.WithCancel(ctx)
	slow := objstore.Backoff{Base: time.Hour, Max: time.Hour, OnRetry: func(int, error, time.Duration) { lcancel() }}
	calls = 0
	err = objstore.Retry(lctx, slow, func(context.Context) error { calls++; return transient })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("interrupted sleep: %v after %d calls", err, calls)
	}
}
