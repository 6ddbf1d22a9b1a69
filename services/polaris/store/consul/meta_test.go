package consul

import (
	"fmt"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
)

func TestMetaRoundTripAndLimit(t *testing.T) {
	reg := registry.Registration{TTL: 3 * time.Second, Instance: registry.Instance{
		Service: "echo", Addr: "[::1]:5090", Version: "1", Kind: registry.KindProvider,
		Labels: map[string]string{"gray": "canary", "ünïcode key": string(make([]byte, 2000))},
	}}
	meta, err := encodeMeta(reg)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range meta {
		if len(v) > metaChunk || len(k) > 128 {
			t.Fatalf("meta %s: %d bytes", k, len(v))
		}
	}
	got, ok := decodeMeta(meta)
	if !ok || fmt.Sprint(got) != fmt.Sprint(reg) {
		t.Fatalf("round trip: %v %v", got, ok)
	}
	reg.Instance.Labels["huge"] = string(make([]byte, 40000))
	if _, err := encodeMeta(reg); err == nil {
		t.Fatal("oversized labels accepted")
	}
	if _, ok := decodeMeta(map[string]string{"version": "1"}); ok {
		t.Fatal("a foreign service decoded")
	}
}

func FuzzDecodeMeta(f *testing.F) {
	good, _ := encodeMeta(registry.Registration{Instance: registry.Instance{Service: "s", Addr: "a:1"}})
	f.Add(good["polaris0"], "")
	f.Add("e30", "x")
	f.Add("!!", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		reg, ok := decodeMeta(map[string]string{"polaris0": a, "polaris1": b})
		if !ok {
			return
		}
		again, err := encodeMeta(reg)
		if err != nil {
			return // decodable but over the limit when re-encoded: never written by polaris
		}
		if back, ok := decodeMeta(again); !ok || fmt.Sprint(back) != fmt.Sprint(reg) {
			t.Fatalf("re-encode of %v: %v %v", reg, back, ok)
		}
	})
}

func FuzzEscKeyInjective(f *testing.F) {
	f.Add("a", "b", "c", "d", "e", "a", "b", "c", "d/e", "")
	f.Add("a/b", "c", "d", "e", "f", "a", "b/c", "d", "e", "f")
	f.Fuzz(func(t *testing.T, p1, g1, s1, v1, f1, p2, g2, s2, v2, f2 string) {
		k1 := config.Key{Project: p1, Group: g1, Service: s1, Version: v1, File: f1}
		k2 := config.Key{Project: p2, Group: g2, Service: s2, Version: v2, File: f2}
		if k1 != k2 && escKey(k1) == escKey(k2) {
			t.Fatalf("%v and %v share %q", k1, k2, escKey(k1))
		}
	})
}
