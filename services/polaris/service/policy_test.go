package service

import (
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
)

func TestAddrMatches(t *testing.T) {
	for _, c := range []struct {
		instance, addr string
		want           bool
	}{
		{"10.0.0.7:5090", "10.0.0.7:5090", true},
		{"10.0.0.7", "10.0.0.7:5090", true},
		{"10.0.0.7", "10.0.0.8:5090", false},
		{"10.0.0.7:5090", "10.0.0.7:5091", false},
		{anyInstance, "172.18.0.5:5090", true}, // a tier certificate shared by replicas
		{"", "10.0.0.7:5090", false},
		{anyInstance, "", false},
		{"loader", "172.18.0.5:5090", false},
	} {
		if got := addrMatches(c.instance, c.addr); got != c.want {
			t.Errorf("addrMatches(%q, %q) = %v, want %v", c.instance, c.addr, got, c.want)
		}
	}
}

func TestWhoActsForProviders(t *testing.T) {
	ctx := t.Context()
	reg, err := registry.New(ctx, registry.NewMemStore(), registry.Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	s := New(Options{Registry: reg})
	provider := registry.Instance{Service: "echo", Addr: "10.0.0.7:5090", Kind: registry.KindProvider}
	consumer := registry.Instance{Service: "echo", Addr: "10.0.0.7:9988", Kind: registry.KindConsumer}
	if _, err := reg.Register(ctx, provider, registry.Load{Total: 1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, consumer, registry.Load{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	as := func(svc string) Caller {
		return Caller{Entrance: EntranceGRPC, HasIdentity: true, Identity: Identity{Service: svc, Instance: "10.0.0.7"}}
	}
	for _, c := range []struct {
		name string
		who  string
		req  Request
		ok   bool
	}{
		{"loader registers its provider", "loader", RegisterRequest{Instance: provider}, true},
		{"atom registers a provider on its host", "atom", RegisterRequest{Instance: provider}, false},
		{"atom registers as a consumer", "atom", RegisterRequest{Instance: consumer}, true},
		{"lbclient registers itself as a provider of lbclient", "lbclient", RegisterRequest{Instance: registry.Instance{Service: "lbclient", Addr: "10.0.0.7:9989", Kind: registry.KindProvider}}, true},
		{"lbclient registers a provider of atom", "lbclient", RegisterRequest{Instance: registry.Instance{Service: "atom", Addr: "10.0.0.7:9988", Kind: registry.KindProvider}}, false},
		{"loader heartbeats its provider", "loader", HeartbeatRequest{Key: provider.Key()}, true},
		{"webgate heartbeats a provider on its host", "webgate", HeartbeatRequest{Key: provider.Key()}, false},
		{"lbclient deregisters a provider on its host", "lbclient", DeregisterRequest{Key: provider.Key()}, false},
		{"atom heartbeats its consumer record", "atom", HeartbeatRequest{Key: consumer.Key()}, true},
		{"loader reads the config of its service", "loader", GetConfigRequest{Key: config.Key{Service: "echo"}}, true},
		{"atom on the loader's host reads the loader's config", "atom", GetConfigRequest{Key: config.Key{Service: "echo"}}, false},
	} {
		_, err := s.Authorize(ctx, as(c.who), c.req)
		if ok := err == nil; ok != c.ok {
			t.Errorf("%s: err = %v, want allowed = %v", c.name, err, c.ok)
		} else if !ok && aserr.CodeOf(err) != aserr.ErrForbidden.Code {
			t.Errorf("%s: code %d, want %d", c.name, aserr.CodeOf(err), aserr.ErrForbidden.Code)
		}
	}
}
