package hotconfig

import (
	"testing"
	"time"

	"github.com/athenaserving/asf/services/atom"
	"github.com/athenaserving/asf/services/loader"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/tests/suitetest"
)

// TestGrayRevisionReachesLabelledInstances pushes gray revisions to group canary: the
// loader and the atom started with label gray=canary apply them and report it, the
// other loader keeps the normal revision.
func TestGrayRevisionReachesLabelledInstances(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 2, Licence: 4,
		Loader: func(i int, c *loader.Config) {
			c.RemoteConfig = file
			if i == 1 {
				c.Labels = map[string]string{"gray": "canary"}
			}
		},
		Atom: func(c *atom.Config) { c.Labels = map[string]string{"gray": "canary"} },
	})
	cc := s.Polaris.ConfigCenter()
	k := config.Key{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: file}
	normal, err := cc.Push(t.Context(), k, []byte("licence: 4\n"), "normal", "")
	if err != nil {
		t.Fatal(err)
	}
	gray, err := cc.Push(t.Context(), k, []byte("licence: 7\n"), "try 7 on the canary group", "canary")
	if err != nil {
		t.Fatal(err)
	}
	suitetest.WaitFor(t, 10*time.Second, func() bool { return s.Loaders[1].Licence() == 7 })
	revOf := func(addr string) int64 {
		for _, a := range cc.Applied(k) {
			if a.Addr == addr && a.Applied {
				return a.Revision
			}
		}
		return 0
	}
	suitetest.WaitFor(t, 10*time.Second, func() bool {
		return revOf(s.Loaders[1].AdvertisedAddr()) == gray.Revision && revOf(s.Loaders[0].AdvertisedAddr()) == normal.Revision
	})
	if l := s.Loaders[0].Licence(); l != 4 {
		t.Fatalf("loader outside the gray group runs licence %d, want 4", l)
	}

	// atom: a gray traffic split reaches the labelled replica.
	tk := config.Key{Project: "asf", Group: "default", Service: "capabilities", Version: "v1", File: "traffic_echo.json"}
	if _, err := cc.Push(t.Context(), tk, []byte(`{"versions":{"2":100}}`), "canary split", "canary"); err != nil {
		t.Fatal(err)
	}
	suitetest.WaitFor(t, 10*time.Second, func() bool {
		sp, ok := s.Atoms[0].Traffic().Splits()["echo"]
		return ok && sp.Versions["2"] == 100
	})
}
