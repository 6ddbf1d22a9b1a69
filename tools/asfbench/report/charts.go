package report

import (
	"fmt"
	"image/color"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// drawCharts draws latency percentiles and throughput against the load for every system with
// at least two measured loads. It returns the file names written.
func drawCharts(dir string, s *Scenario) ([]string, error) {
	var lat, tput []any
	n := 0
	for _, sys := range s.Systems() {
		rows := s.ByX(sys)
		if len(rows) < 2 {
			continue
		}
		n++
		var p50, p90, p99, tp plotter.XYs
		for _, r := range rows {
			sum := r.Result.Summary
			p50 = append(p50, plotter.XY{X: r.X, Y: msf(sum.P50)})
			p90 = append(p90, plotter.XY{X: r.X, Y: msf(sum.P90)})
			p99 = append(p99, plotter.XY{X: r.X, Y: msf(sum.P99)})
			tp = append(tp, plotter.XY{X: r.X, Y: sum.Throughput})
		}
		lat = append(lat, sys+" p50", p50, sys+" p90", p90, sys+" p99", p99)
		tput = append(tput, sys, tp)
	}
	if n == 0 {
		return nil, nil
	}
	var out []string
	for _, c := range []struct {
		name, title, y string
		series         []any
		logY           bool
	}{
		{s.ID + "-latency.png", s.Title + ": latency", "latency (ms)", lat, true},
		{s.ID + "-throughput.png", s.Title + ": throughput", "requests/s", tput, false},
	} {
		p := plot.New()
		p.Title.Text = c.title
		p.X.Label.Text = s.XLabel
		p.Y.Label.Text = c.y
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		if c.logY {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		if err := plotutil.AddLinePoints(p, c.series...); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		p.BackgroundColor = color.White
		if err := p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, c.name)); err != nil {
			return nil, err
		}
		out = append(out, c.name)
	}
	return out, nil
}

// msf is a duration in milliseconds, floored at 1 µs so it fits a log axis.
func msf(d time.Duration) float64 {
	return max(float64(d)/float64(time.Millisecond), 0.001)
}
