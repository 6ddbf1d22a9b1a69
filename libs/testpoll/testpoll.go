// Package testpoll is the one way tests wait for a condition: poll it at an interval until it
// holds or a total time is up, then fail the test with what was awaited (nats-server's
// checkFor is the model). Tests never sleep to synchronise.
//
//	testpoll.CheckFor(t, 3*time.Second, 10*time.Millisecond, func() error {
//	    if n := lb.Live("echo"); n != 2 {
//	        return fmt.Errorf("live echo loaders: %d, want 2", n)
//	    }
//	    return nil
//	})
//	testpoll.Until(t, 3*time.Second, "two live echo loaders", func() bool { return lb.Live("echo") == 2 })
package testpoll

import (
	"errors"
	"fmt"
	"time"
)

// Interval is the polling interval of Until.
const Interval = 5 * time.Millisecond

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// CheckFor calls f every interval until it returns nil; when total has passed it fails the
// test with f's last error. f is called at least once.
func CheckFor(t TB, total, interval time.Duration, f func() error) {
	t.Helper()
	if err := Check(total, interval, f); err != nil {
		t.Fatalf("%v", err)
	}
}

// Until calls cond every Interval until it returns true; when total has passed it fails the
// test naming what it waited for.
func Until(t TB, total time.Duration, what string, cond func() bool) {
	t.Helper()
	CheckFor(t, total, Interval, func() error {
		if cond() {
			return nil
		}
		return errors.New(what)
	})
}

// Check is CheckFor without a test: it returns nil once f does, or an error wrapping f's
// last error when total has passed.
func Check(total, interval time.Duration, f func() error) error {
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("timed out after %v waiting for: %w", total, err)
		}
		time.Sleep(interval) // the polling interval, not synchronisation
	}
}
