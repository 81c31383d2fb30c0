package engines

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// TempSuffix ends the name of every file being written; such files are never
// runs and may be removed by recovery.
const TempSuffix = ".tmp"

// RunNamer hands out run names that are unique and never reused:
//
//	<seq: 16 lowercase hex digits>-<nonce: 8 lowercase hex digits>.<ext>
//
// seq increases within an engine and is persisted in its checkpoint state, so
// a listing sorts by creation order; nonce is random per open, so that two
// engines opened from the same older checkpoint (a rollback) never produce the
// same name, even though they continue from the same seq.
type RunNamer struct {
	mu    sync.Mutex
	next  uint64
	nonce string
}

// NewRunNamer returns a namer whose first name has sequence number next.
func NewRunNamer(next uint64) *RunNamer {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("engines: crypto/rand failed: %v", err))
	}
	return &RunNamer{next: next, nonce: hex.EncodeToString(b[:])}
}

// Next returns a new run name with the given extension (letters and digits
// only, e.g. "sst", "log", "hint").
func (n *RunNamer) Next(ext string) string {
	n.mu.Lock()
	seq := n.next
	n.next++
	n.mu.Unlock()
	return fmt.Sprintf("%016x-%s.%s", seq, n.nonce, ext)
}

// NextSeq returns the sequence number the next name will carry; engines
// persist it in their checkpoint state.
func (n *RunNamer) NextSeq() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.next
}

// Observe makes sure later names have sequence numbers above seq.
func (n *RunNamer) Observe(seq uint64) {
	n.mu.Lock()
	if seq >= n.next {
		n.next = seq + 1
	}
	n.mu.Unlock()
}

// ParseRunName splits a run name made by RunNamer. ok is false for any other
// name.
func ParseRunName(name string) (seq uint64, nonce, ext string, ok bool) {
	if len(name) < 16+1+8+2 || name[16] != '-' || name[25] != '.' {
		return 0, "", "", false
	}
	seq, err := strconv.ParseUint(name[:16], 16, 64)
	if err != nil || !isLowerHex(name[:16]) || !isLowerHex(name[17:25]) {
		return 0, "", "", false
	}
	ext = name[26:]
	if ext == "" || strings.IndexFunc(ext, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) >= 0 {
		return 0, "", "", false
	}
	return seq, name[17:25], ext, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// RunWriter writes one run file: to a temporary name, buffered, computing the
// CRC-32C of every byte; Finish makes it durable under its final name.
type RunWriter struct {
	fs   FS
	dir  string
	name string
	f    File
	bw   *bufio.Writer
	crc  uint32
	off  int64
	done bool
}

// CreateRun starts writing run name in dir.
func CreateRun(fs FS, dir, name string) (*RunWriter, error) {
	f, err := fs.OpenFile(filepath.Join(dir, name+TempSuffix), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create run %s: %w", name, err)
	}
	return &RunWriter{fs: fs, dir: dir, name: name, f: f, bw: bufio.NewWriterSize(f, 256<<10)}, nil
}

// Name returns the run's final name.
func (w *RunWriter) Name() string { return w.name }

// Offset returns the number of bytes written so far.
func (w *RunWriter) Offset() int64 { return w.off }

// Write appends p to the run.
func (w *RunWriter) Write(p []byte) (int, error) {
	n, err := w.bw.Write(p)
	w.crc = crc32.Update(w.crc, CastagnoliTable, p[:n])
	w.off += int64(n)
	if err != nil {
		return n, fmt.Errorf("write run %s: %w", w.name, err)
	}
	return n, nil
}

// Finish flushes and fsyncs the file, renames it to its final name and fsyncs
// the directory. After Finish the run is sealed.
func (w *RunWriter) Finish() (RunInfo, error) {
	if w.done {
		return RunInfo{}, fmt.Errorf("finish run %s: already finished", w.name)
	}
	w.done = true
	tmp := filepath.Join(w.dir, w.name+TempSuffix)
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.fs.Rename(tmp, filepath.Join(w.dir, w.name))
	}
	if err == nil {
		err = w.fs.SyncDir(w.dir)
	}
	if err != nil {
		_ = w.fs.Remove(tmp)
		return RunInfo{}, fmt.Errorf("seal run %s: %w", w.name, err)
	}
	return RunInfo{Name: w.name, Size: w.off, CRC32C: w.crc}, nil
}

// Abort closes and removes the temporary file. It is a no-op after Finish.
func (w *RunWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	_ = w.f.Close()
	_ = w.fs.Remove(filepath.Join(w.dir, w.name+TempSuffix))
}

// WriteRun writes data as a complete run file and seals it.
func WriteRun(fs FS, dir, name string, data []byte) (RunInfo, error) {
	w, err := CreateRun(fs, dir, name)
	if err != nil {
		return RunInfo{}, err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return RunInfo{}, err
	}
	return w.Finish()
}

// WriteFileAtomic replaces dir/name with data: temporary file, fsync, rename,
// fsync of the directory. A crash leaves either the old or the new content.
func WriteFileAtomic(fs FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+TempSuffix)
	f, err := fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// FileCRC32C returns the size and CRC-32C of a whole file.
func FileCRC32C(fs FS, path string) (int64, uint32, error) {
	f, err := Open(fs, path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := crc32.New(CastagnoliTable)
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, 0, err
	}
	return n, h.Sum32(), nil
}

// CheckRunsPresent returns an error wrapping ErrMissingRun if a run of cp is
// not in dir with its recorded size. It does not read the files.
func CheckRunsPresent(fs FS, dir string, cp *Checkpoint) error {
	for _, r := range cp.Runs {
		f, err := Open(fs, filepath.Join(dir, r.Name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%w: %s", ErrMissingRun, r.Name)
			}
			return err
		}
		st, err := f.Stat()
		f.Close()
		if err != nil {
			return err
		}
		if st.Size() != r.Size {
			return Corruptf(r.Name, st.Size(), "run size %d, checkpoint records %d", st.Size(), r.Size)
		}
	}
	return nil
}
