package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestSummarise(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(101-i)*time.Microsecond)
	}
	d := summarise(lat, time.Second)
	// Quantiles by the nearest rank (asfbench.Histogram): the 50th and the 99th of 100 values.
	if d.Calls != 100 || d.P50Us != 50 || d.P99Us != 99 || d.MeanUs != 50.5 || d.PerSecond != 100 {
		t.Fatalf("summarise: %+v", d)
	}
	if d := summarise(nil, time.Second); d.Calls != 0 || d.P50Us != 0 {
		t.Fatalf("empty: %+v", d)
	}
}

func TestMeasureCountsCallsAndErrors(t *testing.T) {
	n := 0
	d, err := measure(context.Background(), 1, 0, 50*time.Millisecond, func(context.Context) error {
		n++
		if n%2 == 0 {
			return errors.New("even")
		}
		return nil
	})
	if err != nil || d.Calls == 0 || d.Errors == 0 || d.Calls+d.Errors != n {
		t.Fatalf("measure: %+v, %v (calls made %d)", d, err, n)
	}
	_, err = measure(context.Background(), 2, 0, 20*time.Millisecond, func(context.Context) error { return errors.New("down") })
	if err == nil {
		t.Fatal("measure with every call failing: no error")
	}
}

// TestWithLoaderSendsBothWays: an echo loader answers once requests sent either way.
func TestWithLoaderSendsBothWays(t *testing.T) {
	for _, via := range []string{viaStream, viaGRPCStream, viaUnary} {
		cfg := baseConfig()
		err := withLoader(t.Context(), cfg, via, func(once onceFunc) error {
			out, err := once(t.Context(), onceInput(cfg.Service, 16))
			if err == nil && len(out.GetPl()) != 1 {
				err = fmt.Errorf("echo output %v", out)
			}
			return err
		})
		if err != nil {
			t.Fatalf("via %s: %v", via, err)
		}
	}
	if err := run(t.Context(), []string{"-via", "carrier-pigeon"}, io.Discard, io.Discard); err == nil {
		t.Fatal("an unknown -via: no error")
	}
}
