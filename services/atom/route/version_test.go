package route

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
)

// versionPicker serves "echo@1" from loader v1 and "echo" from both; it records the
// services asked for.
type versionPicker struct {
	mu       sync.Mutex
	services []string
}

func (p *versionPicker) Pick(_ context.Context, service string, _ int, exclude []string, _ string) ([]string, error) {
	p.mu.Lock()
	p.services = append(p.services, service)
	p.mu.Unlock()
	switch service {
	case "echo":
		return []string{"v1"}, nil
	case "echo@1":
		return []string{"v1"}, nil
	case "echo@2":
		return nil, aserr.ErrNoEngine
	}
	return nil, aserr.New(aserr.ErrNotFound.Code, "engine version not found")
}

func TestVersionPinnedSplitAndFallback(t *testing.T) {
	p := &versionPicker{}
	d := fakeDialer{"v1": {once: onceOK("v1")}}
	split := "2"
	r := New(p, d, Options{Version: func(string) string { return split }})

	f := frame(3, "hi")
	f.Header["engine_version"] = "1"
	if _, err := r.Once(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	f.Header["engine_version"] = "9"
	if _, err := r.Once(t.Context(), f); aserr.CodeOf(err) != 10404 {
		t.Fatalf("unknown pinned version: %v, want 10404", err)
	}
	// The split chose 2, which has no loader: any version serves.
	if _, err := r.Once(t.Context(), frame(3, "hi")); err != nil {
		t.Fatalf("split to a version without loaders: %v", err)
	}
	got := strings.Join(p.services, ",")
	if got != "echo@1,echo@9,echo@2,echo" {
		t.Fatalf("picks %s", got)
	}
}

type waitRecorder struct {
	nopObserver
	mu    sync.Mutex
	waits map[string]int
}

func (w *waitRecorder) Wait(capability string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if d < 0 {
		panic("negative wait")
	}
	w.waits[capability]++
}

func TestWaitObservedPerAdmittedRequest(t *testing.T) {
	p := &fakePicker{addrs: []string{"a", "b"}}
	d := fakeDialer{"a": {once: onceErr(aserr.ErrLicenceFull)}, "b": {once: onceOK("b")}}
	w := &waitRecorder{waits: map[string]int{}}
	r := New(p, d, Options{Observer: w})
	for range 3 {
		if _, err := r.Once(t.Context(), frame(3, "hi")); err != nil {
			t.Fatal(err)
		}
	}
	if w.waits["echo"] != 3 {
		t.Fatalf("waits %v, want 3 for echo (one per admitted request, refusals not counted)", w.waits)
	}
}
