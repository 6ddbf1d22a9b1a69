package svcmain

import (
	"context"
	"testing"
	"time"
)

type plain struct{}

func (plain) Start(context.Context) error    { return nil }
func (plain) Shutdown(context.Context) error { return nil }

type draining struct {
	plain
	budget time.Duration
}

func (d draining) ShutdownBudget() time.Duration { return d.budget }

func TestShutdownBudgetFollowsTheServicesDrain(t *testing.T) {
	cases := []struct {
		svc  Service
		want time.Duration
	}{
		{plain{}, ShutdownTimeout},
		{draining{budget: time.Second}, ShutdownTimeout},
		{draining{budget: 65 * time.Second}, 65 * time.Second},
	}
	for _, c := range cases {
		if got := shutdownBudget(c.svc); got != c.want {
			t.Errorf("%T %v: budget %v, want %v", c.svc, c.svc, got, c.want)
		}
	}
}
