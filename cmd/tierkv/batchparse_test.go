package main

import (
	"bytes"
	"encoding/hex"
	"maps"
	"strconv"
	"strings"
	"testing"
)

func TestParseBatchLine(t *testing.T) {
	long := strings.Repeat("k", 65536)
	tests := []struct {
		line    string
		want    batchOp
		skip    bool   // blank or comment
		wantErr string // substring of the error; "" = no error
	}{
		{line: "", skip: true},
		{line: "   \t ", skip: true},
		{line: "# a comment", skip: true},
		{line: "   #put a b", skip: true},
		{line: "put a 1", want: batchOp{Kind: batchPut, Key: []byte("a"), Value: []byte("1")}},
		{line: "  put\ta   1  \r", want: batchOp{Kind: batchPut, Key: []byte("a"), Value: []byte("1")}},
		{line: "put hex:00ff hex:", want: batchOp{Kind: batchPut, Key: []byte{0, 0xff}, Value: []byte{}}},
		{line: "put k hex:68656c6c6f20776f726c64", want: batchOp{Kind: batchPut, Key: []byte("k"), Value: []byte("hello world")}},
		{line: "put k#1 v#2", want: batchOp{Kind: batchPut, Key: []byte("k#1"), Value: []byte("v#2")}},
		{line: "del a", want: batchOp{Kind: batchDel, Key: []byte("a")}},
		{line: "get hex:61", want: batchOp{Kind: batchGet, Key: []byte("a")}},
		{line: "snapshot", want: batchOp{Kind: batchSnapshot}},
		{line: "snapshot offset=42 src=kafka:7", want: batchOp{Kind: batchSnapshot, Meta: map[string]string{"offset": "42", "src": "kafka:7"}}},
		{line: "snapshot empty=", want: batchOp{Kind: batchSnapshot, Meta: map[string]string{"empty": ""}}},
		{line: "restore latest", want: batchOp{Kind: batchRestore}},
		{line: "restore 17", want: batchOp{Kind: batchRestore, Version: 17}},

		{line: "put a", wantErr: "put takes 2 argument(s), got 1"},
		{line: "put a b c", wantErr: "got 3"},
		{line: "del", wantErr: "del takes 1 argument(s), got 0"},
		{line: "get a b", wantErr: "get takes 1"},
		{line: "PUT a b", wantErr: `unknown operation "PUT"`},
		{line: "set a b", wantErr: `unknown operation "set"`},
		{line: "put hex:0 v", wantErr: "invalid hex token"},
		{line: "put k hex:zz", wantErr: "invalid hex token"},
		{line: "put hex: v", wantErr: "empty key"},
		{line: "get hex:", wantErr: "empty key"},
		{line: "put " + long + " v", wantErr: "exceeds the limit"},
		{line: "snapshot novalue", wantErr: "want KEY=VALUE"},
		{line: "snapshot =v", wantErr: "want KEY=VALUE"},
		{line: "snapshot a=1 a=2", wantErr: "given twice"},
		{line: "restore", wantErr: "restore takes 1"},
		{line: "restore 0", wantErr: "invalid version"},
		{line: "restore -1", wantErr: "invalid version"},
		{line: "restore newest", wantErr: "invalid version"},
	}
	for _, tt := range tests {
		name := tt.line
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			op, ok, err := parseBatchLine(tt.line)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseBatchLine(%q) error = %v, want one containing %q", tt.line, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseBatchLine(%q): %v", tt.line, err)
			}
			if ok == tt.skip {
				t.Fatalf("parseBatchLine(%q) ok = %v, want %v", tt.line, ok, !tt.skip)
			}
			if !tt.skip && !opEqual(op, tt.want) {
				t.Fatalf("parseBatchLine(%q) = %+v, want %+v", tt.line, op, tt.want)
			}
		})
	}
}

func opEqual(a, b batchOp) bool {
	return a.Kind == b.Kind && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) &&
		a.Version == b.Version && maps.Equal(a.Meta, b.Meta)
}

// formatBatchOp renders op as a batch line that parses back to it.
func formatBatchOp(op batchOp) string {
	tok := func(b []byte) string { return hexPrefix + hex.EncodeToString(b) }
	switch op.Kind {
	case batchPut:
		return "put " + tok(op.Key) + " " + tok(op.Value)
	case batchDel:
		return "del " + tok(op.Key)
	case batchGet:
		return "get " + tok(op.Key)
	case batchSnapshot:
		s := "snapshot"
		for k, v := range op.Meta {
			s += " " + k + "=" + v
		}
		return s
	case batchRestore:
		if op.Version == 0 {
			return "restore latest"
		}
		return "restore " + strconv.FormatUint(op.Version, 10)
	}
	return ""
}

// FuzzParseBatchLine checks that no input panics, that a parsed operation
// is well formed, and that it survives a format/parse round trip.
func FuzzParseBatchLine(f *testing.F) {
	for _, s := range []string{
		"put a 1", "put hex:00ff hex:", "del a", "get hex:61", "snapshot offset=42 x=", "restore latest",
		"restore 17", "# comment", "", "put a", "snapshot =v", "restore 0", "put hex:zz v", "\tget\x00 \xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		op, ok, err := parseBatchLine(line)
		if err != nil || !ok {
			if ok {
				t.Fatalf("ok with error %v", err)
			}
			return
		}
		switch op.Kind {
		case batchPut, batchDel, batchGet:
			if len(op.Key) == 0 {
				t.Fatalf("%q parsed to an empty key", line)
			}
		case batchSnapshot:
			for k := range op.Meta {
				if k == "" || strings.ContainsAny(k, "= \t\n") {
					t.Fatalf("%q parsed to metadata key %q", line, k)
				}
			}
		case batchRestore:
		default:
			t.Fatalf("%q parsed to kind %d", line, op.Kind)
		}
		again, ok2, err := parseBatchLine(formatBatchOp(op))
		if err != nil || !ok2 || !opEqual(op, again) {
			t.Fatalf("round trip of %q: %q parsed to %+v, %v, %v; want %+v", line, formatBatchOp(op), again, ok2, err, op)
		}
	})
}
