package reliability

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The journal is the kill test's oracle: a text file, one event per line,
// that the writer process appends to before (and, for commits, after) each
// operation, and the driver appends to between writer lives. The writer
// writes each line with one write(2) (it survives SIGKILL) and fsyncs after
// the lines that report a commit, before its next operation. A set's
// sequence number is its line number, so values are unique across the whole
// history.
//
//	set K PAD          about to Set key K to makeValue(K, line, PAD)
//	del K              about to Delete key K
//	open MODE          about to tiered.Open (MODE remote: restore latest;
//	                   local: ResumeLocal)
//	base V STATE       the whole state read right after an open (V is the
//	                   version it descends from); written by the writer after
//	                   its Open and by the driver after its ResumeLocal check
//	snap               about to Snapshot
//	commit V DIGEST    Snapshot committed version V (fsynced)
//	restore V          about to Restore(V)
//	restored V DIGEST  Restore(V) returned (fsynced)
//	forget             about to Forget(KeepLast) and GC(0)
//	gcdone N           both returned; N runs deleted
//	landed V DIGEST    driver: the snapshot in flight at the kill did commit V
//
// A torn last line (no newline) is ignored: the writer died while writing it,
// so the operation it announces never started.

// journal appends events to the journal file and mirrors each line to an
// optional notification pipe (the driver reacts to events as they happen).
type journal struct {
	f      *os.File
	notify *os.File // may be nil
	lines  int      // lines in the file, this one's number is lines+1
}

// openJournal opens path for appending and counts its complete lines.
func openJournal(path string, notify *os.File) (*journal, error) {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	// Drop a torn last line so that the next one starts on its own line.
	if i := strings.LastIndexByte(string(data), '\n'); i+1 != len(data) {
		if err := os.Truncate(path, int64(i+1)); err != nil {
			return nil, err
		}
		data = data[:i+1]
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &journal{f: f, notify: notify, lines: strings.Count(string(data), "\n")}, nil
}

// next returns the line number the next event gets.
func (j *journal) next() uint64 { return uint64(j.lines + 1) }

// log appends one event; with sync it also fsyncs the journal.
func (j *journal) log(sync bool, format string, args ...any) error {
	line := fmt.Sprintf(format, args...) + "\n"
	if _, err := j.f.WriteString(line); err != nil {
		return err
	}
	j.lines++
	if sync {
		if err := j.f.Sync(); err != nil {
			return err
		}
	}
	if j.notify != nil {
		// A failed write means the driver is gone (EPIPE): stop, rather
		// than write forever as an orphan.
		if _, err := j.notify.WriteString(line); err != nil {
			return fmt.Errorf("notify the driver: %w", err)
		}
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// model is the journal replayed.
type model struct {
	lines    int              // complete lines
	cur      state            // the state if every announced operation took effect
	versions map[uint64]state // state of every committed version
	latest   uint64           // highest committed version

	// lb is the state at the last point the local directory is known to
	// hold at least: the last base, commit or restored event. since holds
	// the sets and deletes announced after it.
	lb    state
	since []op

	// snapping: a snap event without its commit: the snapshot in flight at
	// the kill, whose state is snapState.
	snapping  bool
	snapState state

	// restoring: restores (or opens in remote mode) were announced since
	// the last durable point and did not finish; restoreTo lists the
	// versions they switch to (an open restores the latest version at the
	// time, 0 when there was none: it starts an empty store). Any of them
	// may have switched the directory before the kill.
	restoring bool
	restoreTo []uint64

	last string // kind of the last event
}

// op is one announced set (or delete, with del true).
type op struct {
	key int
	e   entry
	del bool
}

// replay reads the journal at path. Digest mismatches between what the
// writer reported and what the replay computes are errors.
func replay(path string) (*model, error) {
	m := &model{cur: state{}, lb: state{}, versions: map[uint64]state{}}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	complete := strings.Count(string(data), "\n")
	for sc.Scan() {
		if m.lines == complete {
			break // torn last line
		}
		m.lines++
		if err := m.apply(uint64(m.lines), sc.Text()); err != nil {
			return nil, fmt.Errorf("journal %s line %d %q: %w", path, m.lines, sc.Text(), err)
		}
	}
	return m, sc.Err()
}

func (m *model) apply(line uint64, txt string) error {
	f := strings.Fields(txt)
	if len(f) == 0 {
		return fmt.Errorf("empty line")
	}
	atoi := func(i int) (int, error) {
		if i >= len(f) {
			return 0, fmt.Errorf("missing field %d", i)
		}
		return strconv.Atoi(f[i])
	}
	atou := func(i int) (uint64, error) {
		if i >= len(f) {
			return 0, fmt.Errorf("missing field %d", i)
		}
		return strconv.ParseUint(f[i], 10, 64)
	}
	m.last = f[0]
	switch f[0] {
	case "set":
		k, err := atoi(1)
		if err != nil {
			return err
		}
		pad, err := atoi(2)
		if err != nil {
			return err
		}
		e := entry{Seq: line, Pad: pad}
		m.cur[k] = e
		m.since = append(m.since, op{key: k, e: e})
	case "del":
		k, err := atoi(1)
		if err != nil {
			return err
		}
		delete(m.cur, k)
		m.since = append(m.since, op{key: k, del: true})
	case "open":
		if len(f) != 2 {
			return fmt.Errorf("want open MODE")
		}
		if f[1] == "remote" {
			m.restoring = true
			m.restoreTo = append(m.restoreTo, m.latest)
		}
	case "base":
		if len(f) != 3 {
			return fmt.Errorf("want base V STATE")
		}
		s, err := decodeState(f[2])
		if err != nil {
			return err
		}
		m.cur, m.lb, m.since = s.clone(), s.clone(), nil
		m.restoring, m.restoreTo, m.snapping = false, nil, false
	case "snap":
		m.snapping, m.snapState = true, m.cur.clone()
	case "commit", "landed":
		v, err := atou(1)
		if err != nil {
			return err
		}
		if len(f) != 3 {
			return fmt.Errorf("want %s V DIGEST", f[0])
		}
		if !m.snapping {
			return fmt.Errorf("%s without a snapshot in flight", f[0])
		}
		if d := m.snapState.digest(); d != f[2] {
			return fmt.Errorf("writer reports digest %s for version %d, replay gives %s", f[2], v, d)
		}
		if v <= m.latest {
			return fmt.Errorf("version %d committed after version %d", v, m.latest)
		}
		m.versions[v], m.latest = m.snapState.clone(), v
		m.snapping = false
		if f[0] == "commit" {
			// The seal before the commit is durable locally.
			m.lb, m.since = m.snapState.clone(), nil
			m.restoring, m.restoreTo = false, nil
		}
	case "restore":
		v, err := atou(1)
		if err != nil {
			return err
		}
		if _, ok := m.versions[v]; !ok {
			return fmt.Errorf("restore of version %d, never committed", v)
		}
		m.restoring = true
		m.restoreTo = append(m.restoreTo, v)
	case "restored":
		v, err := atou(1)
		if err != nil {
			return err
		}
		s, ok := m.versions[v]
		if !ok || len(f) != 3 || s.digest() != f[2] {
			return fmt.Errorf("restored version %d with digest %v, replay knows %v", v, f[2:], s)
		}
		m.cur, m.lb, m.since = s.clone(), s.clone(), nil
		m.restoring, m.restoreTo = false, nil
	case "forget", "gcdone":
	default:
		return fmt.Errorf("unknown event %q", f[0])
	}
	if f[0] != "snap" && f[0] != "commit" && f[0] != "landed" && f[0] != "forget" && f[0] != "gcdone" {
		// Only sets, deletes and the open/restore group can leave a snapshot
		// hanging: a snap is always followed by its commit or a kill.
		if m.snapping && (f[0] == "set" || f[0] == "del" || f[0] == "restore") {
			return fmt.Errorf("%s while a snapshot is in flight", f[0])
		}
	}
	return nil
}

// localCandidates returns, per key, the entries the local directory may
// hold after a crash: the entry at the last durable point and every entry
// announced since ("absent" is the zero entry with ok false, encoded as Seq
// 0).
func (m *model) localCandidates() map[int]map[entry]bool {
	c := make(map[int]map[entry]bool, numKeys)
	for k := 0; k < numKeys; k++ {
		c[k] = map[entry]bool{m.lb[k]: true} // zero entry = absent
	}
	for _, o := range m.since {
		if o.del {
			c[o.key][entry{}] = true
		} else {
			c[o.key][o.e] = true
		}
	}
	return c
}

// checkLocal checks a state recovered from the local directory after a
// kill: each key holds its value at the last durable point or one written
// since, or, when restores were in flight, the state is exactly one of the
// versions they were switching to.
func (m *model) checkLocal(got state) error {
	for _, v := range m.restoreTo {
		want, ok := m.versions[v]
		if v == 0 {
			want, ok = state{}, true
		}
		if ok && got.equal(want) {
			return nil
		}
	}
	cands := m.localCandidates()
	for k := 0; k < numKeys; k++ {
		if !cands[k][got[k]] {
			var opts []string
			for e := range cands[k] {
				opts = append(opts, fmt.Sprintf("%v", e))
			}
			return fmt.Errorf("%s holds %v, but since the last durable point it only held %v (restores in flight to versions %v)",
				keyName(k), got[k], opts, m.restoreTo)
		}
	}
	return nil
}
