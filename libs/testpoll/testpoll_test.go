package testpoll

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type recorder struct{ failed string }

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestCheckForReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	var r recorder
	CheckFor(&r, time.Minute, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if r.failed != "" || n != 3 {
		t.Fatalf("failed %q after %d calls", r.failed, n)
	}
}

func TestCheckForFailsWithTheLastError(t *testing.T) {
	var r recorder
	n := 0
	CheckFor(&r, 0, time.Millisecond, func() error { n++; return fmt.Errorf("attempt %d", n) })
	if n != 1 || !strings.Contains(r.failed, "attempt 1") || !strings.Contains(r.failed, "timed out") {
		t.Fatalf("calls %d, failure %q", n, r.failed)
	}
}

func TestUntilNamesWhatItWaitedFor(t *testing.T) {
	var r recorder
	Until(&r, 0, "the loader to register", func() bool { return false })
	if !strings.Contains(r.failed, "the loader to register") {
		t.Fatalf("failure %q", r.failed)
	}
	r = recorder{}
	Until(&r, time.Minute, "true", func() bool { return true })
	if r.failed != "" {
		t.Fatalf("failure %q", r.failed)
	}
}
