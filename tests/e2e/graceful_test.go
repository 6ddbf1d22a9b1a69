package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/suitetest"
)

// gracefulBound is the most a graceful stop of an idle-but-loaded atom or loader may take:
// the long-lived call streams are drained (their calls answered, then ended), never waited
// out to the shutdown's own bound (15 s here).
const gracefulBound = 5 * time.Second

// TestGracefulStopsLoseNoOnceRequest stops one of two atoms, then one of two loaders,
// gracefully under a steady once load through webgate. The once requests travel on
// webgate's Atom.CallStreams and atom's Loader.OnceStreams: none fails (those running
// finish, those sent after the drain go elsewhere), and each stop ends within
// gracefulBound.
func TestGracefulStopsLoseNoOnceRequest(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2, Atoms: 2})
	load := startOnceLoad(t, s.Client(), 8)
	suitetest.WaitFor(t, 10*time.Second, func() bool { return load.ok.Load() >= 100 })
	for _, stop := range []struct {
		name     string
		shutdown func(context.Context) error
	}{
		{"atom-0", s.Atoms[0].Shutdown},
		{"loader-0", s.Loaders[0].Shutdown},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		began := time.Now()
		err := stop.shutdown(ctx)
		took := time.Since(began)
		cancel()
		t.Logf("%s stopped in %v (%v)", stop.name, took, err)
		if took > gracefulBound {
			t.Errorf("%s took %v to stop gracefully, want ≤ %v", stop.name, took, gracefulBound)
		}
		ok := load.ok.Load()
		suitetest.WaitFor(t, 10*time.Second, func() bool { return load.ok.Load() >= ok+100 })
		if n, _, msg := load.failed(); n > 0 {
			t.Fatalf("%d once requests failed around %s's stop, last: %s", n, stop.name, msg)
		}
	}
}
