package uploader

// Forget drops what the uploader knows of the named runs that are settled:
// the remote may have lost them (a GC in another process deleted them), so
// the next Enqueue of such a run uploads it again. Runs in flight are left
// alone: their upload is under way.
func (u *Uploader) Forget(names ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, n := range names {
		if e, ok := u.mu.runs[n]; ok && e.settled {
			delete(u.mu.runs, n)
		}
	}
}

// Pending returns the number of runs enqueued whose upload has not settled
// (queued or in flight).
func (u *Uploader) Pending() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, e := range u.mu.runs {
		if !e.settled {
			n++
		}
	}
	return n
}
