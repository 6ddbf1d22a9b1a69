package procstat

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	line := "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 8 0 12345 100000 2000 18446744073709551615\n"
	ppid, cpu, err := ParseStat([]byte(line))
	require.NoError(t, err)
	assert.Equal(t, 1, ppid)
	assert.Equal(t, 3800*time.Millisecond, cpu) // (250+130) ticks at 100 Hz
	_, _, err = ParseStat([]byte("1234 (x) S 1 2"))
	assert.Error(t, err)
	_, _, err = ParseStat([]byte("no paren"))
	assert.Error(t, err)
}

func TestParseStatus(t *testing.T) {
	st := "Name:\tloader\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n"
	peak, rss, err := ParseStatus([]byte(st))
	require.NoError(t, err)
	assert.Equal(t, int64(20480*1024), peak)
	assert.Equal(t, int64(10240*1024), rss)
	_, _, err = ParseStatus([]byte("VmHWM:\t12 MB\n"))
	assert.Error(t, err)
	peak, _, err = ParseStatus([]byte("Name:\tkthreadd\n"))
	require.NoError(t, err)
	assert.Zero(t, peak)
}

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, s.PeakRSS, int64(0))
	assert.Greater(t, s.RSS, int64(0))
	assert.Equal(t, os.Getppid(), s.PPID)
	require.NoError(t, ResetPeak(os.Getpid()))
	u := Group{PIDs: []int{os.Getpid(), 1 << 30}}.Read() // the second pid does not exist
	assert.Equal(t, s.PeakRSS > 0, u.PeakRSS > 0)
	assert.NotContains(t, Descendants(os.Getppid()), os.Getppid())
	assert.Contains(t, Descendants(os.Getppid()), os.Getpid())
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 1 0 1 1 1"))
	f.Add([]byte("1 ()) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, cpu, err := ParseStat(b)
		if err == nil && cpu < 0 {
			t.Fatal("negative cpu")
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("VmHWM:\t 1 kB\nVmRSS:\t 2 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, r, err := ParseStatus(b)
		if err == nil && (p < 0 || r < 0) {
			t.Fatal("negative size")
		}
	})
}

func TestParseMachine(t *testing.T) {
	a, err := ParseMachine([]byte("cpu  100 10 50 1000 5 1 2 7 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a != (MachineTimes{Busy: 100 + 10 + 50 + 1 + 2 + 7, Idle: 1005}) {
		t.Fatalf("got %+v", a)
	}
	b := MachineTimes{Busy: a.Busy + 30, Idle: a.Idle + 90}
	if s := BusyShare(a, b); s != 0.25 {
		t.Fatalf("busy share %v, want 0.25", s)
	}
	if BusyShare(a, a) != 0 {
		t.Fatal("no time passed: want 0")
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := ParseMachine([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := ReadMachine(); err != nil {
		t.Fatalf("this machine's /proc/stat: %v", err)
	}
}
