package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// newTable returns a tab-separated table writer; call Flush when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// humanBytes renders n bytes in binary units ("512 B", "1.5 MiB").
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= unit
		if f < unit && f > -unit {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%.1f PiB", f/unit)
}

// formatMeta renders metadata as sorted "k=v" pairs separated by commas.
func formatMeta(md map[string]string) string {
	if len(md) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + md[k]
	}
	return strings.Join(parts, ",")
}

// formatTime renders a creation time in UTC to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// formatParent renders a parent version, "-" for none.
func formatParent(v uint64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatUint(v, 10)
}

// parseVersionArg parses "latest" (0) or a version number (> 0).
func parseVersionArg(s string) (uint64, error) {
	if s == "" || s == "latest" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, usagef("invalid version %q: want a positive number or \"latest\"", s)
	}
	return v, nil
}

// parseDuration parses a Go duration ("90m", "36h") or a number of days or
// weeks ("7d", "2w").
func parseDuration(flag, s string) (time.Duration, error) {
	bad := usagef("invalid --%s %q: want a duration such as 30m, 36h, 7d or 2w", flag, s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		k, err := strconv.ParseUint(s[:n-1], 10, 32)
		if err != nil {
			return 0, bad
		}
		day := 24 * time.Hour
		if s[n-1] == 'w' {
			day *= 7
		}
		return time.Duration(k) * day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, bad
	}
	return d, nil
}

// formatDuration renders d the way parseDuration reads it, exactly: whole
// weeks as "2w", whole days as "7d", anything else as Go prints it without
// zero trailing units ("36h", "1h30m", "1ns").
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d > 0 && d%(7*day) == 0:
		return strconv.FormatInt(int64(d/(7*day)), 10) + "w"
	case d > 0 && d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// hexPrefix marks a token given as hexadecimal bytes.
const hexPrefix = "hex:"

// decodeToken returns the bytes a command-line or batch token stands for:
// "hex:..." is raw bytes in hexadecimal ("hex:" alone is the empty value),
// anything else is the token itself.
func decodeToken(tok string) ([]byte, error) {
	if !strings.HasPrefix(tok, hexPrefix) {
		return []byte(tok), nil
	}
	b, err := hex.DecodeString(tok[len(hexPrefix):])
	if err != nil {
		return nil, fmt.Errorf("invalid hex token %q: want an even number of hex digits after %q", tok, hexPrefix)
	}
	return b, nil
}

// absentText is what get prints for a key that is absent.
const absentText = "(absent)"

// displayValue renders a value on one line so that nothing is ambiguous:
// printable UTF-8 as is; the empty value, bytes that are not printable
// UTF-8, text with a leading or trailing blank, and text that could be read
// as a token ("hex:...", "(absent)") as "hex:" and hexadecimal digits.
func displayValue(b []byte) string {
	s := string(b)
	plain := len(b) > 0 && utf8.ValidString(s) && !strings.HasPrefix(s, hexPrefix) && s != absentText &&
		strings.TrimSpace(s) == s
	for _, r := range s {
		if !plain {
			break
		}
		plain = r >= ' ' && r != 0x7f && r != utf8.RuneError && (r < 0x80 || r >= 0xa0)
	}
	if plain {
		return s
	}
	return hexPrefix + hex.EncodeToString(b)
}

// isTerminal reports whether w is a character device (an interactive
// terminal), so that progress bars go only there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
