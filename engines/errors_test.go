package engines

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestCorruptionError(t *testing.T) {
	cases := []struct {
		err  *CorruptionError
		want string
	}{
		{&CorruptionError{File: "000001.sst", Offset: 0, Reason: "bad magic"},
			"engines: corruption in 000001.sst at offset 0: bad magic"},
		{&CorruptionError{File: "manifests/00000000000000000007", Offset: UnknownOffset, Reason: "checksum mismatch"},
			"engines: corruption in manifests/00000000000000000007: checksum mismatch"},
		{&CorruptionError{File: "STORE", Offset: 12, Reason: "invalid JSON", Err: io.ErrUnexpectedEOF},
			"engines: corruption in STORE at offset 12: invalid JSON: unexpected EOF"},
	}
	for _, c := range cases {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
		wrapped := fmt.Errorf("open: %w", c.err)
		var ce *CorruptionError
		if !errors.Is(wrapped, ErrCorrupt) || !errors.As(wrapped, &ce) || ce != c.err {
			t.Errorf("%v: errors.Is(ErrCorrupt) or errors.As(*CorruptionError) fails", wrapped)
		}
	}
	if err := Corruptf("f", UnknownOffset, "size %d", 3); err.Error() != "engines: corruption in f: size 3" {
		t.Errorf("Corruptf = %q", err)
	}
	if !errors.Is(&CorruptionError{Err: io.EOF}, io.EOF) {
		t.Error("the cause is not unwrapped")
	}
}
