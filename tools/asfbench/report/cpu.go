package report

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// SuiteServices are the suite's process groups in the order the report lists them.
var SuiteServices = []string{"webgate", "atom", "loader", "lbclient", "polaris"}

// BenchGroup is the process group of the load generator (asfbench itself).
const BenchGroup = "asfbench"

// Units of a CPU figure.
const (
	PerRequest = "request"
	PerFrame   = "frame"
)

// CPU is the CPU per request (or per frame) behind one figure: each process group of the
// measured system, their sum, the load generator's own, and the baseline's server at the
// same load in the same run. Every figure is in µs of CPU (user + system) per unit.
type CPU struct {
	// Unit is what one count is: PerRequest or PerFrame.
	Unit string
	// At names the load of the rows ("c=64", "1000 sessions").
	At string
	// System names the measured system; Services is the CPU of each of its process groups
	// (the load generator excluded) and Sum adds them up. Services is empty when the system
	// has no measured row at this load.
	System   string
	Services map[string]float64 `json:",omitempty"`
	Sum      float64
	// Bench is asfbench's own CPU while it drove the measured system.
	Bench float64
	// Baseline names the baseline system ("" when it has no measured row at this load) and
	// BaselineSum is the CPU of its server processes.
	Baseline    string
	BaselineSum float64
}

// NewCPU is the CPU per unit of row and of baseline (either may be nil) from their
// CPUPer1k, at load at. It is nil when neither carries a CPU reading.
func NewCPU(unit, at string, row, baseline *Row) *CPU {
	c := &CPU{Unit: unit, At: at}
	has := false
	if row != nil && row.Result != nil && len(row.CPUPer1k) > 0 {
		has = true
		c.System = row.System
		c.Services = map[string]float64{}
		for k, v := range row.CPUPer1k {
			if k == BenchGroup {
				c.Bench = perUnitUs(v)
				continue
			}
			c.Services[k] = perUnitUs(v)
			c.Sum += perUnitUs(v)
		}
	}
	if baseline != nil && baseline.Result != nil && len(baseline.CPUPer1k) > 0 {
		has = true
		c.Baseline = baseline.System
		for k, v := range baseline.CPUPer1k {
			if k != BenchGroup {
				c.BaselineSum += perUnitUs(v)
			}
		}
	}
	if !has {
		return nil
	}
	return c
}

// perUnitUs converts CPU seconds per 1000 units to µs per unit.
func perUnitUs(secPer1k float64) float64 { return secPer1k * 1000 }

// cpuColumns lists the process groups of cs: SuiteServices first (those present), then the
// others sorted.
func cpuColumns(cs []*CPU) []string {
	seen := map[string]bool{}
	for _, c := range cs {
		for k := range c.Services {
			seen[k] = true
		}
	}
	var out []string
	for _, k := range SuiteServices {
		if seen[k] {
			out = append(out, k)
			delete(seen, k)
		}
	}
	rest := make([]string, 0, len(seen))
	for k := range seen {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// writeCPU writes the CPU behind the targets that carry one, keyed by the target's figure.
func writeCPU(w io.Writer, ts []Target) {
	var with []Target
	var cs []*CPU
	for _, t := range ts {
		if t.CPU != nil {
			with = append(with, t)
			cs = append(cs, t.CPU)
		}
	}
	if len(with) == 0 {
		return
	}
	cols := cpuColumns(cs)
	fmt.Fprintln(w, "CPU behind the figures above, in µs of CPU per request (per frame on WebSocket rows), "+
		"from the rows each figure comes from; sum = the measured system's process groups, asfbench = the load generator's own, "+
		"baseline = the baseline's server at the same load in the same run:")
	fmt.Fprintln(w)
	header := append(append([]string{"figure", "per", "load"}, cols...), "sum", "asfbench", "baseline", "sum / baseline")
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, t := range with {
		c := t.CPU
		cells := []string{t.Metric, c.Unit, c.At}
		for _, k := range cols {
			cells = append(cells, cpuCell(c.Services, k))
		}
		sum, bench := "–", "–"
		if len(c.Services) > 0 {
			sum, bench = fmt.Sprintf("**%.1f**", c.Sum), fmt.Sprintf("%.1f", c.Bench)
		}
		base, vs := "–", "–"
		if c.Baseline != "" {
			base = fmt.Sprintf("%s %.1f", c.Baseline, c.BaselineSum)
			if len(c.Services) > 0 && c.BaselineSum > 0 {
				vs = fmt.Sprintf("%.2f×", c.Sum/c.BaselineSum)
			}
		}
		cells = append(cells, sum, bench, base, vs)
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

func cpuCell(m map[string]float64, k string) string {
	v, ok := m[k]
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.1f", v)
}

// CPUChart is a bar chart of CPU per request (or per frame) by process group: at every load
// point the measured system's bar, stacked by process group, and beside it the baseline's.
type CPUChart struct {
	// File is the PNG file name, relative to the report.
	File, Title string
	// Unit is PerRequest or PerFrame (the y axis).
	Unit string
	Bars []CPUBar
}

// CPUBar is one load point of a CPUChart.
type CPUBar struct {
	// Label names the point on the x axis ("once c=64").
	Label string
	CPU   CPU
}

// baselines lists the baseline names of the chart's bars in first-appearance order.
func (c CPUChart) baselines() []string {
	var out []string
	for _, b := range c.Bars {
		if b.CPU.Baseline != "" && !slices.Contains(out, b.CPU.Baseline) {
			out = append(out, b.CPU.Baseline)
		}
	}
	return out
}
