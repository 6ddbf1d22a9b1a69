package report

import (
	"fmt"
	"image/color"
	"path/filepath"
	"strings"
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

// drawCPUChart draws c into dir: at every load point the measured system's bar stacked by
// process group, the baseline's bar beside it. It draws nothing (false) when c has no bar.
func drawCPUChart(dir string, c CPUChart) (bool, error) {
	if len(c.Bars) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = c.Title
	p.Y.Label.Text = "CPU µs per " + c.Unit
	p.Legend.Top = true
	p.Legend.Left = true
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)
	labels := make([]string, len(c.Bars))
	cpus := make([]*CPU, len(c.Bars))
	for i, b := range c.Bars {
		labels[i] = b.Label
		cpus[i] = &b.CPU
	}
	p.NominalX(labels...)
	width := vg.Points(min(22, 300/float64(len(c.Bars))))
	var below *plotter.BarChart
	top := 0.0
	for i, k := range cpuColumns(cpus) {
		vals := make(plotter.Values, len(c.Bars))
		for j, b := range c.Bars {
			vals[j] = b.CPU.Services[k]
		}
		bar, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return false, err
		}
		bar.Color = plotutil.Color(i)
		bar.LineStyle.Width = 0
		bar.Offset = -width / 2
		if below != nil {
			bar.StackOn(below)
		}
		below = bar
		p.Add(bar)
		p.Legend.Add(k, bar)
	}
	base := make(plotter.Values, len(c.Bars))
	for j, b := range c.Bars {
		base[j] = b.CPU.BaselineSum
		top = max(top, b.CPU.BaselineSum, b.CPU.Sum)
	}
	bar, err := plotter.NewBarChart(base, width)
	if err != nil {
		return false, err
	}
	bar.Color = color.Gray{Y: 160}
	bar.LineStyle.Width = 0
	bar.Offset = width / 2
	p.Add(bar)
	p.Legend.Add("baseline: "+strings.Join(c.baselines(), ", "), bar)
	// Headroom above the tallest bar for the legend.
	p.Y.Min, p.Y.Max = 0, max(top, 1)*1.5
	p.X.Min, p.X.Max = -0.6, float64(len(c.Bars))-0.4
	p.BackgroundColor = color.White
	if err := p.Save(vg.Length(max(7, 1.2*float64(len(c.Bars))))*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, c.File)); err != nil {
		return false, err
	}
	return true, nil
}

// msf is a duration in milliseconds, floored at 1 µs so it fits a log axis.
func msf(d time.Duration) float64 {
	return max(float64(d)/float64(time.Millisecond), 0.001)
}
