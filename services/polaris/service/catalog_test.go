package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCatalogFollowsCenter(t *testing.T) {
	ctx := context.Background()
	center := config.New(config.NewMemStore(), config.Options{})
	pre := config.Key{Project: "p", Group: "g", Service: "s", Version: "1", File: "old.toml"}
	cat, err := NewCatalog(ctx, center, func(context.Context) ([]config.Key, error) { return []config.Key{pre}, nil }, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); cat.Run(ctx) }()

	// old.toml is listed by the lister but holds nothing: it is dropped when listed.
	k := config.Key{Project: "p", Group: "g", Service: "s", Version: "1", File: "a.toml"}
	if _, err := center.Push(ctx, k, []byte("x"), "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := center.Push(ctx, k, []byte("y"), "", "canary"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fs, err := cat.Files(ctx, config.Key{Project: "p"})
		if err == nil && len(fs) == 1 && fs[0].Current == 1 && fs[0].Gray["canary"] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalog: %+v %v", fs, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := cat.Files(ctx, config.Key{Project: "p", Service: "nope"}); !errors.Is(err, aserr.ErrNotFound) {
		t.Fatalf("unknown service: %v", err)
	}
	if err := center.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := cat.Files(ctx, config.Key{Project: "p"}); errors.Is(err, aserr.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deleted file still listed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	center.Close() // Run ends with the center
	<-done
}
