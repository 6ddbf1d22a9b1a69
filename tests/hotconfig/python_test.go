package hotconfig

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/tests/suitetest"
)

// TestPythonEngineChangesConfigUnderLoad changes the engine config of a Python engine:
// new worker processes take it while requests and sessions run on the old ones.
func TestPythonEngineChangesConfigUnderLoad(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	t.Setenv("ASF_AIGES_SDK", filepath.Join(root, "sdk", "python"))
	s := suitetest.Start(t, suitetest.Options{Loaders: 1, Licence: 4, Engine: loader.EnginePython, Loader: func(_ int, c *loader.Config) {
		c.EnginePath = filepath.Join(root, "examples", "engines", "python-echo", "wrapper.py")
		c.Workers, c.RemoteConfig, c.RetireTimeout = 1, file, 5*time.Second
	}})
	k := config.Key{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: file}

	ctx, stop := context.WithCancel(context.Background())
	l := &load{}
	c := s.Client()
	l.wg.Add(2)
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
	suitetest.WaitFor(t, 20*time.Second, func() bool { return l.ok.Load() > 10 && l.sessions.Load() > 3 })

	rev := push(t, s, k, "engine-config: {greeting: v2}\n")
	reported(t, s, k, rev, true)
	if g := s.Loaders[0].EngineGeneration(); g != 2 {
		t.Fatalf("generation %d after the config change, want 2", g)
	}
	mark, sess := l.ok.Load(), l.sessions.Load()
	suitetest.WaitFor(t, 20*time.Second, func() bool { return l.ok.Load() > mark+10 && l.sessions.Load() > sess+3 })
	stopLoad()
	t.Logf("once ok %d, sessions completed %d, failed %d", l.ok.Load(), l.sessions.Load(), l.failed.Load())
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d failed requests or sessions: %q", n, l.errs)
	}
}

// push pushes content as the next revision of the loader config and returns it.
func push(t *testing.T, s *suitetest.Suite, k config.Key, content string) int64 {
	t.Helper()
	s.PushConfig(k.Service, k.File, []byte(content))
	return latest(t, s, k)
}
