package main

import (
	"fmt"
	"strings"

	"github.com/tierkv/tierkv/engines"
)

// batchKind is the operation of one batch line.
type batchKind int

const (
	batchPut batchKind = iota + 1
	batchDel
	batchGet
	batchSnapshot
	batchRestore
)

// batchOp is one parsed batch line.
type batchOp struct {
	Kind  batchKind
	Key   []byte            // put, del, get
	Value []byte            // put
	Meta  map[string]string // snapshot; nil when none given
	// Version is the version to restore; 0 means latest.
	Version uint64
}

// parseBatchLine parses one line of "tierkv batch" input. The grammar, with
// tokens separated by blanks:
//
//	put KEY VALUE
//	del KEY
//	get KEY
//	snapshot [NAME=VALUE ...]
//	restore VERSION|latest
//
// A KEY or VALUE token "hex:DIGITS" is raw bytes in hexadecimal; "hex:"
// alone is the empty value. Blank lines and lines whose first non-blank
// character is '#' are skipped: ok is false and err nil. Keys and values are
// checked against the engine limits here, so a bad line is refused before
// anything of it is applied.
func parseBatchLine(line string) (op batchOp, ok bool, err error) {
	f := strings.Fields(line)
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return batchOp{}, false, nil
	}
	want := func(n int, usage string) error {
		if len(f) != n {
			return fmt.Errorf("%s takes %d argument(s), got %d: want %q", f[0], n-1, len(f)-1, usage)
		}
		return nil
	}
	switch f[0] {
	case "put":
		if err := want(3, "put KEY VALUE (hex: alone is the empty value)"); err != nil {
			return batchOp{}, false, err
		}
		op.Kind = batchPut
		if op.Key, err = decodeToken(f[1]); err != nil {
			return batchOp{}, false, err
		}
		if op.Value, err = decodeToken(f[2]); err != nil {
			return batchOp{}, false, err
		}
		if err := engines.CheckKV(op.Key, op.Value); err != nil {
			return batchOp{}, false, err
		}
	case "del", "get":
		if err := want(2, f[0]+" KEY"); err != nil {
			return batchOp{}, false, err
		}
		op.Kind = batchDel
		if f[0] == "get" {
			op.Kind = batchGet
		}
		if op.Key, err = decodeToken(f[1]); err != nil {
			return batchOp{}, false, err
		}
		if err := engines.CheckKey(op.Key); err != nil {
			return batchOp{}, false, err
		}
	case "snapshot":
		op.Kind = batchSnapshot
		if len(f) > 1 {
			if op.Meta, err = parseMeta(f[1:]); err != nil {
				return batchOp{}, false, err
			}
		}
	case "restore":
		if err := want(2, "restore VERSION|latest"); err != nil {
			return batchOp{}, false, err
		}
		op.Kind = batchRestore
		if op.Version, err = parseVersionArg(f[1]); err != nil {
			return batchOp{}, false, err
		}
	default:
		return batchOp{}, false, fmt.Errorf("unknown operation %q: want put, del, get, snapshot or restore", f[0])
	}
	return op, true, nil
}
