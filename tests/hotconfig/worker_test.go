package hotconfig

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/loader/engine/cabi/cabitest"
	"github.com/athenaserving/asf/services/loader/worker"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/tests/suitetest"
)

// TestEngineWorkerHelper is the loader's engine-worker subcommand when this test binary
// is started by a worker pool (isolation process); otherwise it does nothing.
func TestEngineWorkerHelper(t *testing.T) {
	if !worker.IsChild() {
		t.Skip("runs only as an isolation worker process")
	}
	i := slices.Index(os.Args, "--")
	os.Exit(loader.EngineWorkerMain(context.Background(), os.Args[i+1:], os.Getenv))
}

// TestCEngineInWorkersChangesConfigUnderLoad changes the engine config of a C engine run
// in worker processes: new workers take the new config while requests and sessions run.
// The same engine inside the loader process refuses the change and says why.
func TestCEngineInWorkersChangesConfigUnderLoad(t *testing.T) {
	lib := cabitest.BuildEcho(t)
	s := suitetest.Start(t, suitetest.Options{Loaders: 2, Licence: 4, Engine: loader.EngineC, Loader: func(i int, c *loader.Config) {
		c.EnginePath, c.RemoteConfig, c.RetireTimeout = lib, file, 5*time.Second
		if i == 0 {
			c.Isolation, c.Workers = loader.IsolationProcess, 1
			c.WorkerCommand = []string{os.Args[0], "-test.run=^TestEngineWorkerHelper$", "--"}
		}
	}})
	k := config.Key{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: file}

	ctx, stop := context.WithCancel(context.Background())
	l := &load{}
	c := s.Client()
	l.wg.Add(3)
	go l.once(ctx, c)
	go l.once(ctx, c)
	go l.session(ctx, c)
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			stop()
			l.wg.Wait()
		}
	}
	t.Cleanup(stopLoad)
	suitetest.WaitFor(t, 10*time.Second, func() bool { return l.ok.Load() > 20 && l.sessions.Load() > 5 })

	s.PushConfig("echo", file, []byte("engine-config: {model: v2}\n"))
	rev := latest(t, s, k)
	suitetest.WaitFor(t, 20*time.Second, func() bool { return s.Loaders[0].EngineGeneration() == 2 })
	var reason string
	suitetest.WaitFor(t, 10*time.Second, func() bool {
		for _, a := range s.Polaris.ConfigCenter().Applied(k) {
			if a.Addr == s.Loaders[1].AdvertisedAddr() && a.Revision == rev && !a.Applied {
				reason = a.Reason
				return true
			}
		}
		return false
	})
	if !strings.Contains(reason, "isolation process") {
		t.Fatalf("in-process C engine: refusal %q does not say why", reason)
	}
	mark, sess := l.ok.Load(), l.sessions.Load()
	suitetest.WaitFor(t, 10*time.Second, func() bool { return l.ok.Load() > mark+20 && l.sessions.Load() > sess+5 })
	stopLoad()
	t.Logf("once ok %d, sessions completed %d, failed %d; in-process refusal: %s", l.ok.Load(), l.sessions.Load(), l.failed.Load(), reason)
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d failed requests or sessions: %q", n, l.errs)
	}
}
