package objstore

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// acceptedForms is appended to every URL error so the operator sees what
// would have worked.
const acceptedForms = "accepted forms: file:///abs/path, " +
	"s3://bucket/prefix?region=R&endpoint=URL&path_style=true, " +
	"minio://host:port/bucket/prefix?secure=false&region=R, mem://name/prefix"

// remoteURL is a parsed remote URL; which fields are set depends on scheme.
type remoteURL struct {
	scheme    string // "file", "s3", "minio" or "mem"
	root      string // file: absolute directory
	name      string // mem: store name
	host      string // minio: host[:port]
	bucket    string // s3, minio
	prefix    string // s3, minio, mem: key prefix without slashes at the ends
	region    string // s3, minio
	endpoint  string // s3: custom endpoint URL
	pathStyle bool   // s3: path-style addressing
	secure    bool   // minio: HTTPS
}

// Open opens the store a remote URL names:
//
//	file:///abs/path                              local directory (made by the first write)
//	s3://bucket/prefix?region=R&endpoint=URL&path_style=true
//	                                              Amazon S3 or any S3 API, via aws-sdk-go-v2
//	minio://host:port/bucket/prefix?secure=false&region=R
//	                                              any S3 API, via minio-go/v7
//	mem://name/prefix                             in-process store shared by name
//
// A URL that cannot be used returns an error matching ErrInvalidURL that
// says what is wrong and lists the accepted forms. Credentials never go in
// the URL; see the package documentation for where each backend finds them.
// Open does not contact the server: a wrong endpoint or missing credentials
// surface at the first operation.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var s Store
	switch u.scheme {
	case "file":
		return NewFile(u.root)
	case "mem":
		s = namedMem(u.name)
	case "s3":
		s, err = newS3(ctx, u)
	case "minio":
		s, err = newMinio(u)
	}
	if err != nil {
		return nil, err
	}
	return WithPrefix(s, u.prefix)
}

func urlError(rawURL, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s (%s)", ErrInvalidURL, Redact(rawURL), fmt.Sprintf(format, args...), acceptedForms)
}

// parseURL checks rawURL without touching the network or the file system.
func parseURL(rawURL string) (remoteURL, error) {
	if rawURL == "" {
		return remoteURL{}, urlError(rawURL, "empty URL")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return remoteURL{}, urlError(rawURL, "cannot parse")
	}
	if u.Opaque != "" {
		return remoteURL{}, urlError(rawURL, "missing \"//\" after the scheme")
	}
	if u.User != nil {
		return remoteURL{}, urlError(rawURL, "credentials do not go in the URL; use the environment (AWS_ACCESS_KEY_ID, MINIO_ACCESS_KEY, ...)")
	}
	if u.Fragment != "" {
		return remoteURL{}, urlError(rawURL, "unexpected fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return remoteURL{}, urlError(rawURL, "cannot parse the query")
	}
	out := remoteURL{scheme: strings.ToLower(u.Scheme)}
	allowed := map[string]bool{}
	switch out.scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return remoteURL{}, urlError(rawURL, "host %q given: a file URL needs an absolute path after three slashes", u.Host)
		}
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
			return remoteURL{}, urlError(rawURL, "an absolute path is required")
		}
		out.root = filepath.Clean(filepath.FromSlash(u.Path))
	case "mem":
		if u.Host == "" {
			return remoteURL{}, urlError(rawURL, "a store name is required after mem://")
		}
		out.name = u.Host
		if out.prefix, err = urlPrefix(u.Path); err != nil {
			return remoteURL{}, urlError(rawURL, "%v", err)
		}
	case "s3":
		allowed = map[string]bool{"region": true, "endpoint": true, "path_style": true}
		out.bucket = u.Host
		if err := checkBucket(out.bucket); err != nil {
			return remoteURL{}, urlError(rawURL, "%v", err)
		}
		if out.prefix, err = urlPrefix(u.Path); err != nil {
			return remoteURL{}, urlError(rawURL, "%v", err)
		}
		out.region = q.Get("region")
		if ep := q.Get("endpoint"); ep != "" {
			e, err := url.Parse(ep)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return remoteURL{}, urlError(rawURL, "endpoint must be an http:// or https:// URL with a host")
			}
			if e.User != nil {
				return remoteURL{}, urlError(rawURL, "credentials do not go in the endpoint URL")
			}
			out.endpoint = ep
		}
		if v := q.Get("path_style"); v != "" {
			if out.pathStyle, err = strconv.ParseBool(v); err != nil {
				return remoteURL{}, urlError(rawURL, "path_style must be true or false, not %q", v)
			}
		}
	case "minio":
		allowed = map[string]bool{"secure": true, "region": true}
		if u.Host == "" || u.Hostname() == "" {
			return remoteURL{}, urlError(rawURL, "a host[:port] is required after minio://")
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return remoteURL{}, urlError(rawURL, "bad port %q", p)
			}
		}
		out.host = u.Host
		bucket, rest, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		out.bucket = bucket
		if err := checkBucket(bucket); err != nil {
			return remoteURL{}, urlError(rawURL, "%v", err)
		}
		if out.prefix, err = urlPrefix(rest); err != nil {
			return remoteURL{}, urlError(rawURL, "%v", err)
		}
		out.secure = true
		if v := q.Get("secure"); v != "" {
			if out.secure, err = strconv.ParseBool(v); err != nil {
				return remoteURL{}, urlError(rawURL, "secure must be true or false, not %q", v)
			}
		}
		out.region = q.Get("region")
	case "":
		return remoteURL{}, urlError(rawURL, "missing scheme")
	default:
		return remoteURL{}, urlError(rawURL, "unknown scheme %q", u.Scheme)
	}
	for k, v := range q {
		if !allowed[k] {
			return remoteURL{}, urlError(rawURL, "unknown query parameter %q", k)
		}
		if len(v) > 1 {
			return remoteURL{}, urlError(rawURL, "query parameter %q given %d times", k, len(v))
		}
	}
	return out, nil
}

// urlPrefix turns a URL path into a key prefix without slashes at the ends.
func urlPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if err := ValidateKey(p); err != nil {
		return "", fmt.Errorf("bad prefix: %v", err)
	}
	return p, nil
}

// checkBucket applies the S3 bucket naming rules (3..63 of a-z, 0-9, '.',
// '-', starting and ending with a letter or digit).
func checkBucket(b string) error {
	if b == "" {
		return fmt.Errorf("a bucket name is required")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3..63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' || !alnum && (i == 0 || i == len(b)-1) {
			return fmt.Errorf("bucket name %q may hold only a-z, 0-9, '.' and '-', and must start and end with a letter or digit", b)
		}
	}
	return nil
}

// Redact returns rawURL fit for a log line: a password or whole userinfo is
// replaced by "REDACTED" (also inside an endpoint= value), and the value of
// every query parameter whose name suggests a secret (containing "secret",
// "key", "token", "password", "signature" or "credential") too. A URL that
// does not parse keeps only its scheme and host-like start, with anything
// after '?' replaced.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return redactText(rawURL)
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "REDACTED"
		} else {
			for k, vs := range q {
				for i, v := range vs {
					if secretParam(k) {
						vs[i] = "REDACTED"
					} else if strings.Contains(v, "://") {
						vs[i] = Redact(v)
					}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// secretParam reports whether a query parameter name looks like it holds a
// secret.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"secret", "key", "token", "password", "passwd", "signature", "credential", "auth"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactText cleans a URL that does not parse: with an '@' anywhere it
// keeps only the scheme, since the userinfo cannot be told apart reliably;
// otherwise it drops the query and fragment.
func redactText(s string) string {
	if strings.Contains(s, "@") {
		if j := strings.Index(s, "://"); j >= 0 {
			return s[:j+3] + "REDACTED"
		}
		return "REDACTED"
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?REDACTED"
	}
	return s
}
