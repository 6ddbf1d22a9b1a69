package loader

import (
	"errors"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

func TestParseRemoteConfig(t *testing.T) {
	rc, err := ParseRemoteConfig([]byte("licence: 4\nengine-config: {attr.cfg: b}\nsession-idle-ttl: 3s\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := rc.over(DefaultConfig())
	if c.Licence != 4 || c.EngineConfig["attr.cfg"] != "b" || c.SessionIdleTTL != 3*time.Second || c.DrainTimeout != DefaultConfig().DrainTimeout {
		t.Fatalf("config %+v", c)
	}
	if _, err := ParseRemoteConfig(nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
	for _, bad := range []string{"engine: c\n", "licence: 0\n", "drain-timeout: -1s\n", "licence: [\n"} {
		if _, err := ParseRemoteConfig([]byte(bad)); !errors.Is(err, aserr.ErrInvalidParam) {
			t.Errorf("%q: %v, want 10107", bad, err)
		}
	}
}

func FuzzParseRemoteConfig(f *testing.F) {
	f.Add([]byte("licence: 4\nengine-config: {a: b}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := ParseRemoteConfig(b)
		if err == nil && rc.Licence != nil && *rc.Licence < 1 {
			t.Fatalf("accepted licence %d", *rc.Licence)
		}
	})
}
