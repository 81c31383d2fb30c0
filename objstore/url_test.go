package objstore

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		want remoteURL
	}{
		{"file:///var/lib/tierkv", remoteURL{scheme: "file", root: "/var/lib/tierkv"}},
		{"file://localhost/tmp/x/", remoteURL{scheme: "file", root: "/tmp/x"}},
		{"s3://my-bucket", remoteURL{scheme: "s3", bucket: "my-bucket"}},
		{"s3://my-bucket/a/b/?region=eu-west-1&endpoint=http://127.0.0.1:9000&path_style=true",
			remoteURL{scheme: "s3", bucket: "my-bucket", prefix: "a/b", region: "eu-west-1", endpoint: "http://127.0.0.1:9000", pathStyle: true}},
		{"minio://127.0.0.1:9000/bkt/p?secure=false", remoteURL{scheme: "minio", host: "127.0.0.1:9000", bucket: "bkt", prefix: "p"}},
		{"minio://play.min.io/bkt", remoteURL{scheme: "minio", host: "play.min.io", bucket: "bkt", secure: true}},
		{"mem://unit/x/y", remoteURL{scheme: "mem", name: "unit", prefix: "x/y"}},
		{"MEM://unit", remoteURL{scheme: "mem", name: "unit"}},
	}
	for _, tc := range good {
		got, err := parseURL(tc.in)
		if err != nil {
			t.Errorf("parseURL(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseURL(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	bad := []struct{ in, why string }{
		{"", "empty"},
		{"/abs/path", "missing scheme"},
		{"file://relative/path", "absolute path"},
		{"file:relative", "//"},
		{"file://", "absolute path"},
		{"gs://bucket", "unknown scheme"},
		{"s3://", "bucket name is required"},
		{"s3://B", "3..63"},
		{"s3://Bucket_Name", "may hold only"},
		{"s3://bucket/../x", "bad prefix"},
		{"s3://bucket?regoin=x", "unknown query parameter"},
		{"s3://bucket?path_style=maybe", "path_style"},
		{"s3://bucket?endpoint=ftp://x", "endpoint"},
		{"s3://AKIA:secretvalue@bucket", "credentials"},
		{"s3://bucket?endpoint=http://u:pw@host", "credentials"},
		{"s3://bucket?region=a&region=b", "2 times"},
		{"minio://", "host"},
		{"minio://host:99999/b", "bad port"},
		{"minio://host:9000", "bucket name is required"},
		{"minio://host:9000/bkt?secure=nah", "secure"},
		{"mem://", "store name"},
		{"s3://bucket#frag", "fragment"},
	}
	for _, tc := range bad {
		_, err := parseURL(tc.in)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("parseURL(%q): err = %v, want ErrInvalidURL", tc.in, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.why) || !strings.Contains(msg, "accepted forms") || strings.Contains(msg, "\n") {
			t.Errorf("parseURL(%q) error %q: want one line mentioning %q and the accepted forms", tc.in, msg, tc.why)
		}
		if strings.Contains(msg, "secretvalue") || strings.Contains(msg, ":pw@") {
			t.Errorf("parseURL(%q) error leaks a secret: %q", tc.in, msg)
		}
	}
}

func TestOpenInvalid(t *testing.T) {
	if _, err := Open(context.Background(), "nope://x"); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("Open: %v", err)
	}
}

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"s3://bucket/p?region=x", "s3://bucket/p?region=x"},
		{"s3://AKIA:topsecret@bucket/p", "s3://REDACTED@bucket/p"},
		{"s3://bucket?endpoint=http://u:topsecret@h:9000&region=r", "s3://bucket?endpoint=http%3A%2F%2FREDACTED%40h%3A9000&region=r"},
		{"minio://h/b?secret_key=topsecret&access_key=AKIA", "minio://h/b?access_key=REDACTED&secret_key=REDACTED"},
		{"s3://u:top%zzsecret@bucket", "s3://REDACTED"},
		{"weird url?token=topsecret", "weird%20url?token=REDACTED"},
		{"%zz?token=topsecret", "%zz?REDACTED"},
	}
	for _, tc := range cases {
		got := Redact(tc.in)
		if got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "topsecret") {
			t.Errorf("Redact(%q) leaks: %q", tc.in, got)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"file:///tmp/x", "s3://bucket/prefix?region=us-east-1&endpoint=http://127.0.0.1:9000&path_style=true",
		"minio://127.0.0.1:9000/bucket/prefix?secure=false", "mem://name/p", "s3://ak:sk@bucket",
		"s3://bucket?endpoint=http://u:p@h", "file://x", "%", "minio://[::1]:9000/bkt",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseURL(raw)
		red := Redact(raw)
		if pu, perr := url.Parse(raw); perr == nil && pu.User != nil {
			if pw, ok := pu.User.Password(); ok && len(pw) >= 6 && strings.Contains(red, pw) && !strings.Contains(strings.Replace(raw, pw, "", 1), pw) {
				t.Fatalf("Redact(%q) = %q leaks the password", raw, red)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("parseURL(%q): error %v does not match ErrInvalidURL", raw, err)
			}
			if strings.Contains(err.Error(), "\n") && !strings.Contains(raw, "\n") {
				t.Fatalf("parseURL(%q): multi-line error", raw)
			}
			return
		}
		switch u.scheme {
		case "file":
			if !strings.HasPrefix(u.root, "/") {
				t.Fatalf("parseURL(%q): relative root %q", raw, u.root)
			}
		case "s3", "minio":
			if checkBucket(u.bucket) != nil {
				t.Fatalf("parseURL(%q): bad bucket %q accepted", raw, u.bucket)
			}
		case "mem":
			if u.name == "" {
				t.Fatalf("parseURL(%q): empty mem name", raw)
			}
		default:
			t.Fatalf("parseURL(%q): scheme %q", raw, u.scheme)
		}
		if u.prefix != "" && ValidateKey(u.prefix) != nil {
			t.Fatalf("parseURL(%q): invalid prefix %q accepted", raw, u.prefix)
		}
	})
}

func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"runs/a", "../x", "a//b", "/a", "a/", `a\b`, ".", "a/./b", "x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key) != nil {
			return
		}
		// An accepted key never escapes a root when joined to it.
		if strings.HasPrefix(key, "/") || strings.Contains(key, `\`) {
			t.Fatalf("accepted %q", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q with segment %q", key, seg)
			}
		}
	})
}
