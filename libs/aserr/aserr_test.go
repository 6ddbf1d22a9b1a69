package aserr

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestCodeOfWrapped(t *testing.T) {
	err := fmt.Errorf("create session s1: %w", ErrLicenceFull)
	if got := CodeOf(err); got != 10110 {
		t.Fatalf("CodeOf = %d, want 10110", got)
	}
	if !errors.Is(err, New(10110, "other text")) {
		t.Fatal("errors.Is should match on code")
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal("errors.Is matched a different code")
	}
	if MessageOf(err) != "licence not enough" {
		t.Fatalf("MessageOf = %q", MessageOf(err))
	}
}

func TestCodeOfContext(t *testing.T) {
	cases := map[error]int{
		nil:                      0,
		context.DeadlineExceeded: 10102,
		context.Canceled:         10222,
		errors.New("boom"):       11502,
	}
	for err, want := range cases {
		if got := CodeOf(err); got != want {
			t.Errorf("CodeOf(%v) = %d, want %d", err, got, want)
		}
	}
}
