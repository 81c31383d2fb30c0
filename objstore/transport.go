package objstore

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// Network timeouts of the s3 and minio backends. They bound every phase of a
// request so that an unreachable or stalled endpoint fails instead of
// hanging; a slow but progressing transfer is never cut off.
const (
	// dialTimeout bounds establishing a TCP connection.
	dialTimeout = 10 * time.Second
	// tlsTimeout bounds the TLS handshake.
	tlsTimeout = 10 * time.Second
	// headerTimeout bounds the wait for response headers once the request,
	// body included, has been written.
	headerTimeout = 60 * time.Second
	// idleReadTimeout bounds the wait for any byte on an open connection.
	idleReadTimeout = 60 * time.Second
)

// connTracker dials the connections of one backend and remembers them, so
// that Close can close them all and no connection goroutine outlives the
// store.
type connTracker struct {
	dialer net.Dialer
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newConnTracker() *connTracker {
	return &connTracker{
		dialer: net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		conns:  make(map[*trackedConn]struct{}),
	}
}

// configure sets tr's dialer and timeouts.
func (t *connTracker) configure(tr *http.Transport) {
	tr.Proxy = http.ProxyFromEnvironment
	tr.DialContext = t.dial
	tr.TLSHandshakeTimeout = tlsTimeout
	tr.ResponseHeaderTimeout = headerTimeout
	tr.ExpectContinueTimeout = time.Second
	tr.IdleConnTimeout = 90 * time.Second
	tr.MaxIdleConns = 100
	tr.MaxIdleConnsPerHost = 16
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
}

// newTransport returns a configured transport of its own.
func (t *connTracker) newTransport() *http.Transport {
	tr := &http.Transport{ForceAttemptHTTP2: true}
	t.configure(tr)
	return tr
}

func (t *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := t.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	t.conns[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every connection and refuses new ones.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = make(map[*trackedConn]struct{})
	t.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

// trackedConn fails a Read that receives nothing for idleReadTimeout and
// leaves its tracker when closed.
type trackedConn struct {
	net.Conn
	t *connTracker
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(idleReadTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}
