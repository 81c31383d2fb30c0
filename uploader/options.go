package uploader

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tierkv/tierkv/objstore"
)

// Options configure an Uploader. The zero value is valid.
type Options struct {
	// Concurrency is the number of upload workers. Default: 4.
	Concurrency int
	// QueueSize is the number of runs that may wait for a worker; Enqueue
	// blocks when the queue is full. Default: 1024.
	QueueSize int
	// MaxAttempts is the number of attempts per upload, the first included.
	// Default: objstore.DefaultMaxAttempts (8).
	MaxAttempts int
	// BaseBackoff is the backoff cap after the first failed attempt; it
	// doubles with every further attempt up to MaxBackoff, and the actual
	// sleep is uniformly random below the cap (full jitter, objstore.Backoff).
	// Default: objstore.DefaultBaseBackoff (50ms).
	BaseBackoff time.Duration
	// MaxBackoff bounds the backoff cap. Default: objstore.DefaultMaxBackoff
	// (5s).
	MaxBackoff time.Duration
	// Logger receives retries (debug) and permanent failures (error).
	// Default: discard.
	Logger *slog.Logger
	// Registerer receives the tierkv_upload_* metrics. Default: nil, no
	// metrics registered.
	Registerer prometheus.Registerer
}

// Defaults of Options.
const (
	DefaultConcurrency = 4
	DefaultQueueSize   = 1024
)

// EnsureDefaults fills in the zero fields of o and returns it.
func (o Options) EnsureDefaults() Options {
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	b := o.backoff().EnsureDefaults()
	o.MaxAttempts, o.BaseBackoff, o.MaxBackoff = b.MaxAttempts, b.Base, b.Max
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// backoff returns the retry policy of o.
func (o Options) backoff() objstore.Backoff {
	return objstore.Backoff{MaxAttempts: o.MaxAttempts, Base: o.BaseBackoff, Max: o.MaxBackoff}
}

// Validate returns an error naming every field of o that is out of range.
// Zero fields are valid (they take their defaults).
func (o Options) Validate() error {
	var errs []error
	if o.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("uploader: Concurrency %d is negative", o.Concurrency))
	}
	if o.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("uploader: QueueSize %d is negative", o.QueueSize))
	}
	if o.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("uploader: MaxAttempts %d is negative", o.MaxAttempts))
	}
	if o.BaseBackoff < 0 {
		errs = append(errs, fmt.Errorf("uploader: BaseBackoff %s is negative", o.BaseBackoff))
	}
	if o.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("uploader: MaxBackoff %s is negative", o.MaxBackoff))
	}
	if d := o.EnsureDefaults(); o.BaseBackoff >= 0 && o.MaxBackoff >= 0 && d.MaxBackoff < d.BaseBackoff {
		errs = append(errs, fmt.Errorf("uploader: MaxBackoff %s is below BaseBackoff %s", d.MaxBackoff, d.BaseBackoff))
	}
	return errors.Join(errs...)
}
