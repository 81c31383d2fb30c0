package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar draws a one-line transfer bar on a terminal:
//
//	restore  [=========>          ]  47%  12.3 MiB / 26.1 MiB
//
// Updates are throttled; Done ends the line.
type progressBar struct {
	w     io.Writer
	label string

	mu    sync.Mutex
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer, label string) *progressBar {
	return &progressBar{w: w, label: label}
}

// Update redraws the bar (at most ten times a second, and always at 100%).
// It is safe for concurrent use.
func (p *progressBar) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	frac = min(max(frac, 0), 1)
	n := int(frac * width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%%  %s / %s ", p.label, bar, frac*100, humanBytes(done), humanBytes(total))
	p.drawn = true
}

// Done ends the bar's line if anything was drawn.
func (p *progressBar) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
