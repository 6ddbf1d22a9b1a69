// Package procstat reads CPU time and peak memory of processes from /proc (Linux), so the bench
// harness can report CPU seconds per 1k requests and peak RSS of each service under test.
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const ClockTicks = 100

// Stat is one reading of a process.
type Stat struct {
	// CPU is user+system time consumed so far.
	CPU time.Duration
	// PeakRSS is VmHWM in bytes: the resident-set high-water mark (reset by ResetPeak).
	PeakRSS int64
	// RSS is VmRSS in bytes.
	RSS int64
	// PPID is the parent process id.
	PPID int
}

// ParseStat extracts the parent pid and user+system CPU time from a /proc/<pid>/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are counted after the
// last ')'.
func ParseStat(b []byte) (ppid int, cpu time.Duration, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("procstat: stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("procstat: stat: %d fields after comm", len(f))
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, fmt.Errorf("procstat: stat ppid: %w", err)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 63)
	st, err2 := strconv.ParseUint(f[12], 10, 63)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("procstat: stat: bad utime/stime")
	}
	ticks := ut + st
	if ticks > uint64(1<<62)/uint64(time.Second/ClockTicks) {
		return 0, 0, errors.New("procstat: stat: cpu time out of range")
	}
	return ppid, time.Duration(ticks) * (time.Second / ClockTicks), nil
}

// ParseStatus extracts VmHWM and VmRSS (bytes) from /proc/<pid>/status. Missing fields are 0
// (kernel threads and zombies have none).
func ParseStatus(b []byte) (peak, rss int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("procstat: status %s: %q", k, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0, 0, fmt.Errorf("procstat: status %s: %q", k, v)
		}
		if k == "VmHWM" {
			peak = n * 1024
		} else {
			rss = n * 1024
		}
	}
	return peak, rss, sc.Err()
}

// Read reads the process pid.
func Read(pid int) (Stat, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	sb, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Stat{}, fmt.Errorf("procstat: %w", err)
	}
	ppid, cpu, err := ParseStat(sb)
	if err != nil {
		return Stat{}, err
	}
	st, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return Stat{}, fmt.Errorf("procstat: %w", err)
	}
	peak, rss, err := ParseStatus(st)
	if err != nil {
		return Stat{}, err
	}
	return Stat{CPU: cpu, PeakRSS: peak, RSS: rss, PPID: ppid}, nil
}

// ResetPeak resets the process's VmHWM to its current RSS (writes 5 to /proc/<pid>/clear_refs),
// so a later reading gives the peak of the next measurement only. It needs the right to write
// that file (own process or root).
func ResetPeak(pid int) error {
	if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0); err != nil {
		return fmt.Errorf("procstat: reset peak: %w", err)
	}
	return nil
}

// Descendants returns the pids of every live descendant of pid (children, grandchildren, ...),
// found by scanning /proc for parent links.
func Descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		pp, _, err := ParseStat(b)
		if err != nil {
			continue
		}
		parent[pp] = append(parent[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range parent[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Group is a set of processes measured together (one service: all its replicas, or a server
// and its worker processes).
type Group struct {
	PIDs []int
}

// Usage is a Group's CPU and memory.
type Usage struct {
	CPU time.Duration
	// PeakRSS is the largest VmHWM of any process of the group.
	PeakRSS int64
	// SumPeakRSS adds up VmHWM over the group's processes.
	SumPeakRSS int64
}

// Read sums the group's CPU and takes its peak RSS. Processes that have gone are skipped.
func (g Group) Read() Usage {
	var u Usage
	for _, p := range g.PIDs {
		s, err := Read(p)
		if err != nil {
			continue
		}
		u.CPU += s.CPU
		u.PeakRSS = max(u.PeakRSS, s.PeakRSS)
		u.SumPeakRSS += s.PeakRSS
	}
	return u
}

// ResetPeak resets VmHWM of every process of the group; errors are ignored (a process that
// cannot be reset keeps its lifetime peak).
func (g Group) ResetPeak() {
	for _, p := range g.PIDs {
		_ = ResetPeak(p)
	}
}

// MachineTimes is one reading of /proc/stat's first line: the CPU time all cores spent
// busy (user, nice, system, irq, softirq, steal) and idle (idle, iowait), in clock ticks.
type MachineTimes struct{ Busy, Idle uint64 }

// ParseMachine reads the aggregate "cpu" line of /proc/stat's contents b.
func ParseMachine(b []byte) (MachineTimes, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return MachineTimes{}, fmt.Errorf("/proc/stat: no aggregate cpu line")
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return MachineTimes{}, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
		v[i] = n
	}
	// user nice system idle iowait irq softirq steal
	return MachineTimes{Busy: v[0] + v[1] + v[2] + v[5] + v[6] + v[7], Idle: v[3] + v[4]}, nil
}

// ReadMachine reads the machine's CPU times now.
func ReadMachine() (MachineTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineTimes{}, err
	}
	return ParseMachine(b)
}

// BusyShare is the share of all cores' time that was busy between a and b (0 when no time
// passed).
func BusyShare(a, b MachineTimes) float64 {
	busy, idle := b.Busy-a.Busy, b.Idle-a.Idle
	if busy+idle == 0 {
		return 0
	}
	return float64(busy) / float64(busy+idle)
}
