package reliability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeJournal writes lines (and an optional torn tail) to a journal file.
func writeJournal(t *testing.T, lines []string, torn string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "journal")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"+torn), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJournalModel checks the oracle of the kill tests on a hand-written
// history: what the remote and the local directory may hold at each point.
func TestJournalModel(t *testing.T) {
	// Line numbers are sequence numbers: "set 1 5" is line 3.
	s1 := state{1: {Seq: 3, Pad: 5}}
	lines := []string{"open remote", "base 0 -", "set 1 5", "snap", "commit 1 " + s1.digest()}
	lines = append(lines, "set 2 0", "del 1", "snap")
	p := writeJournal(t, lines, "set 3 4") // torn: never started
	m, err := replay(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.lines != 8 || m.latest != 1 || !m.versions[1].equal(s1) || !m.snapping {
		t.Fatalf("replay: lines %d latest %d versions %v snapping %v", m.lines, m.latest, m.versions, m.snapping)
	}
	cur := state{2: {Seq: 6, Pad: 0}}
	if !m.cur.equal(cur) || !m.snapState.equal(cur) {
		t.Fatalf("cur %v snapState %v, want %v", m.cur, m.snapState, cur)
	}
	// Locally: the commit's state, or any mix of later writes per key.
	for _, ok := range []state{s1, cur, {1: {Seq: 3, Pad: 5}, 2: {Seq: 6}}, {}} {
		if err := m.checkLocal(ok); err != nil {
			t.Errorf("checkLocal(%v) refused: %v", ok, err)
		}
	}
	// Never a value older than the commit, or one never written.
	for _, bad := range []state{{1: {Seq: 3, Pad: 4}}, {3: {Seq: 9}}} {
		if err := m.checkLocal(bad); err == nil {
			t.Errorf("checkLocal(%v) accepted", bad)
		}
	}
	// The driver lands the snapshot in flight; then a restore of 1 starts.
	p = writeJournal(t, append(lines, "landed 2 "+cur.digest(), "restore 1"), "")
	if m, err = replay(p); err != nil {
		t.Fatal(err)
	}
	if m.latest != 2 || !m.restoring || len(m.restoreTo) != 1 || m.restoreTo[0] != 1 {
		t.Fatalf("after landed and restore: latest %d restoring %v to %d", m.latest, m.restoring, m.restoreTo)
	}
	if err := m.checkLocal(s1); err != nil {
		t.Errorf("the restored version refused: %v", err)
	}
	// The writer dies in the restore; the next one dies opening in remote
	// mode (restoring the latest, 2): version 1, version 2 and the old
	// state all remain possible, and nothing else.
	p = writeJournal(t, append(lines, "landed 2 "+cur.digest(), "restore 1", "open remote"), "")
	if m, err = replay(p); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []state{s1, cur, {}} {
		if err := m.checkLocal(ok); err != nil {
			t.Errorf("after two restores in flight, checkLocal(%v) refused: %v", ok, err)
		}
	}
	if err := m.checkLocal(state{1: {Seq: 3, Pad: 5}, 2: {Seq: 7}}); err == nil {
		t.Error("after two restores in flight, a never-written value was accepted")
	}
	// A wrong digest in a commit is an error of the replay.
	p = writeJournal(t, []string{"base 0 -", "set 1 1", "snap", "commit 1 0000000000000000"}, "")
	if _, err := replay(p); err == nil {
		t.Error("replay accepted a commit whose digest does not match")
	}
	// A commit without a snap is an error too.
	p = writeJournal(t, []string{"base 0 -", "commit 1 " + (state{}).digest()}, "")
	if _, err := replay(p); err == nil {
		t.Error("replay accepted a commit without a snapshot")
	}
}

// TestValueEncoding: values carry their key and sequence number; any other
// bytes are refused.
func TestValueEncoding(t *testing.T) {
	v := makeValue(7, 42, 10)
	if e, err := parseValue(7, v); err != nil || e != (entry{Seq: 42, Pad: 10}) {
		t.Fatalf("parse: %v, %v", e, err)
	}
	if _, err := parseValue(8, v); err == nil {
		t.Error("value of key 7 accepted for key 8")
	}
	for i := range v {
		bad := append([]byte(nil), v...)
		bad[i] ^= 0x20
		if _, err := parseValue(7, bad); err == nil {
			t.Errorf("value with byte %d flipped accepted", i)
		}
	}
	// Cutting the padding gives the value of the same write with a shorter
	// pad: the checks compare the pad length too.
	if e, err := parseValue(7, v[:len(v)-1]); err != nil || e.Pad != 9 {
		t.Errorf("shorter pad: %v, %v; want pad 9", e, err)
	}
}
