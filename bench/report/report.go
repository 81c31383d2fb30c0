// Package report writes the benchmark suite's results: a CSV per experiment,
// a PNG plot drawn with gonum.org/v1/plot, and rows of a markdown summary.
package report

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Table is one experiment's raw results.
type Table struct {
	Header []string
	Rows   [][]string
}

// Add appends a row; values are formatted with %v (floats with %.4g).
func (t *Table) Add(vals ...any) {
	row := make([]string, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case float64:
			row[i] = fmt.Sprintf("%.4g", x)
		default:
			row[i] = fmt.Sprint(x)
		}
	}
	t.Rows = append(t.Rows, row)
}

// WriteCSV writes the table to dir/name.csv.
func (t *Table) WriteCSV(dir, name string) error {
	f, err := os.Create(filepath.Join(dir, name+".csv"))
	if err != nil {
		return fmt.Errorf("write csv %s: %w", name, err)
	}
	w := csv.NewWriter(f)
	_ = w.Write(t.Header)
	_ = w.WriteAll(t.Rows)
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write csv %s: %w", name, err)
	}
	return f.Close()
}

// Series is one line of a plot.
type Series struct {
	Name string
	X, Y []float64
}

// Plot describes a line plot.
type Plot struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	Series                []Series
}

// Add appends point (x, y) to the series called name, creating it.
func (p *Plot) Add(name string, x, y float64) {
	for i := range p.Series {
		if p.Series[i].Name == name {
			p.Series[i].X = append(p.Series[i].X, x)
			p.Series[i].Y = append(p.Series[i].Y, y)
			return
		}
	}
	p.Series = append(p.Series, Series{Name: name, X: []float64{x}, Y: []float64{y}})
}

// WritePNG draws the plot to dir/name.png.
func (p *Plot) WritePNG(dir, name string) error {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.X.Label.Text = p.XLabel
	pl.Y.Label.Text = p.YLabel
	if p.LogX {
		pl.X.Scale = plot.LogScale{}
		pl.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if p.LogY {
		pl.Y.Scale = plot.LogScale{}
		pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	pl.Legend.Top = true
	var args []any
	for _, s := range p.Series {
		pts := make(plotter.XYs, 0, len(s.X))
		for i := range s.X {
			if (p.LogX && s.X[i] <= 0) || (p.LogY && s.Y[i] <= 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: s.X[i], Y: s.Y[i]})
		}
		if len(pts) == 0 {
			continue
		}
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
		args = append(args, s.Name, pts)
	}
	if len(args) == 0 {
		return fmt.Errorf("plot %s: no data points", name)
	}
	if err := plotutil.AddLinePoints(pl, args...); err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	if err := pl.Save(8*vg.Inch, 5*vg.Inch, filepath.Join(dir, name+".png")); err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	return nil
}

// Summary accumulates the markdown summary.
type Summary struct {
	b strings.Builder
}

// Heading adds a section heading.
func (s *Summary) Heading(format string, args ...any) {
	fmt.Fprintf(&s.b, "\n## "+format+"\n\n", args...)
}

// Line adds a paragraph line.
func (s *Summary) Line(format string, args ...any) {
	fmt.Fprintf(&s.b, format+"\n", args...)
}

// Image links a plot.
func (s *Summary) Image(name, alt string) {
	fmt.Fprintf(&s.b, "\n![%s](%s.png)\n\n", alt, name)
}

// Markdown renders a table as markdown.
func (s *Summary) Markdown(t *Table) {
	s.b.WriteString("| " + strings.Join(t.Header, " | ") + " |\n")
	s.b.WriteString("|" + strings.Repeat("---|", len(t.Header)) + "\n")
	for _, r := range t.Rows {
		s.b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	s.b.WriteString("\n")
}

// String returns the markdown.
func (s *Summary) String() string { return s.b.String() }
