package lsm

import (
	"os"
	"testing"

	"github.com/tierkv/tierkv/engines"
	"github.com/tierkv/tierkv/engines/enginetest"
)

// tinyParams spill and merge constantly: a 2 KiB memtable, three runs per
// level and a fence every 3 records.
var tinyParams = Params{MaxRunsPerLevel: 3, DensityFactor: 3, MemtableBytesLimit: 2 << 10}

// noSyncFS is the real file system without fsync. The conformance suite
// cannot observe fsync (its crash test copies a live directory), and with a
// memtable of 1 KiB the suite flushes thousands of times; skipping the
// syncs keeps it fast. The package's own tests use engines.OSFS.
type noSyncFS struct{ engines.OSFS }

type noSyncFile struct{ engines.File }

func (noSyncFile) Sync() error { return nil }

func (fs noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (engines.File, error) {
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

func conformanceFactory(p Params) enginetest.Factory {
	return enginetest.Factory{
		Kind:      Kind,
		StateFile: currentName,
		Open: func(o engines.OpenOptions) (engines.Engine, error) {
			if o.FS == nil {
				o.FS = noSyncFS{}
			}
			return Open(o, p)
		},
	}
}

func TestConformance(t *testing.T) {
	enginetest.Run(t, conformanceFactory(tinyParams))
}

// TestConformanceLeveled runs the suite with max_runs_per_level=1, a fence per
// record and the smallest memtable. It is skipped with -short and -race (the
// suite takes most of a minute under the race detector on a small machine).
func TestConformanceLeveled(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("skipped with -short and -race")
	}
	enginetest.Run(t, conformanceFactory(Params{MaxRunsPerLevel: 1, DensityFactor: 1, MemtableBytesLimit: 1 << 10}))
}
