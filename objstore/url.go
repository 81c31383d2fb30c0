package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
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

// schemes lists the URL schemes Open accepts: the query parameters each
// takes, and the function that checks the rest of the URL.
var schemes = map[string]struct {
	params []string
	parse  func(u *url.URL, q url.Values) (remoteURL, error)
}{
	"file":  {nil, parseFileURL},
	"mem":   {nil, parseMemURL},
	"s3":    {[]string{"region", "endpoint", "path_style"}, parseS3URL},
	"minio": {[]string{"secure", "region"}, parseMinioURL},
}

// parseURL checks rawURL without touching the network or the file system:
// the parts every scheme shares here, the rest in the scheme's function.
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
	scheme := strings.ToLower(u.Scheme)
	sc, ok := schemes[scheme]
	switch {
	case scheme == "":
		return remoteURL{}, urlError(rawURL, "missing scheme")
	case !ok:
		return remoteURL{}, urlError(rawURL, "unknown scheme %q", u.Scheme)
	}
	out, err := sc.parse(u, q)
	if err != nil {
		return remoteURL{}, urlError(rawURL, "%v", err)
	}
	out.scheme = scheme
	for k, v := range q {
		if !slices.Contains(sc.params, k) {
			return remoteURL{}, urlError(rawURL, "unknown query parameter %q", k)
		}
		if len(v) > 1 {
			return remoteURL{}, urlError(rawURL, "query parameter %q given %d times", k, len(v))
		}
	}
	return out, nil
}

// parseFileURL checks file:///abs/path.
func parseFileURL(u *url.URL, _ url.Values) (remoteURL, error) {
	if u.Host != "" && u.Host != "localhost" {
		return remoteURL{}, fmt.Errorf("host %q given: a file URL needs an absolute path after three slashes", u.Host)
	}
	if u.Path == "" || !strings.HasPrefix(u.Path, "/") || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
		return remoteURL{}, errors.New("an absolute path is required")
	}
	return remoteURL{root: filepath.Clean(filepath.FromSlash(u.Path))}, nil
}

// parseMemURL checks mem://name/prefix.
func parseMemURL(u *url.URL, _ url.Values) (remoteURL, error) {
	if u.Host == "" {
		return remoteURL{}, errors.New("a store name is required after mem://")
	}
	prefix, err := urlPrefix(u.Path)
	return remoteURL{name: u.Host, prefix: prefix}, err
}

// parseS3URL checks s3://bucket/prefix?region=R&endpoint=URL&path_style=B.
func parseS3URL(u *url.URL, q url.Values) (remoteURL, error) {
	out := remoteURL{bucket: u.Host, region: q.Get("region")}
	if err := checkBucket(out.bucket); err != nil {
		return remoteURL{}, err
	}
	var err error
	if out.prefix, err = urlPrefix(u.Path); err != nil {
		return remoteURL{}, err
	}
	if ep := q.Get("endpoint"); ep != "" {
		e, err := url.Parse(ep)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return remoteURL{}, errors.New("endpoint must be an http:// or https:// URL with a host")
		}
		if e.User != nil {
			return remoteURL{}, errors.New("credentials do not go in the endpoint URL")
		}
		out.endpoint = ep
	}
	if v := q.Get("path_style"); v != "" {
		if out.pathStyle, err = strconv.ParseBool(v); err != nil {
			return remoteURL{}, fmt.Errorf("path_style must be true or false, not %q", v)
		}
	}
	return out, nil
}

// parseMinioURL checks minio://host:port/bucket/prefix?secure=B&region=R.
func parseMinioURL(u *url.URL, q url.Values) (remoteURL, error) {
	if u.Host == "" || u.Hostname() == "" {
		return remoteURL{}, errors.New("a host[:port] is required after minio://")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return remoteURL{}, fmt.Errorf("bad port %q", p)
		}
	}
	bucket, rest, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	out := remoteURL{host: u.Host, bucket: bucket, region: q.Get("region"), secure: true}
	if err := checkBucket(bucket); err != nil {
		return remoteURL{}, err
	}
	var err error
	if out.prefix, err = urlPrefix(rest); err != nil {
		return remoteURL{}, err
	}
	if v := q.Get("secure"); v != "" {
		if out.secure, err = strconv.ParseBool(v); err != nil {
			return remoteURL{}, fmt.Errorf("secure must be true or false, not %q", v)
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
