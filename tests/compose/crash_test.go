package compose

import "testing"

func TestCrashLine(t *testing.T) {
	log := `{"level":"info","message":"stopping"}
fatal error: stack overflow

runtime stack:
runtime.throw({0x13802ba?, 0x200000001?})
	runtime/panic.go:1229 +0x48 fp=0x1ccfae3bfe98 sp=0x1ccfae3bfe68 pc=0x48da48

goroutine 1 gp=0x1ccfae26e1e0 m=4 mp=0x1ccfae3ab008 [running]:
runtime.mapaccess1_fast64(0x11f1600?, 0x1ccfae43d830?, 0x1ccfae48de30?)
	internal/runtime/maps/runtime_fast64.go:15 +0x1e8
os/signal.Stop(0x335c2fcee230)
	os/signal/signal.go:210 +0x1e8
github.com/athenaserving/asf/libs/lifecycle.SignalContext.func1()
	libs/lifecycle/lifecycle.go:219 +0x1e
github.com/athenaserving/asf/libs/lifecycle.SignalContext.func1()
	libs/lifecycle/lifecycle.go:220 +0x1e
github.com/athenaserving/asf/libs/lifecycle.SignalContext.func1()
`
	want := "fatal error: stack overflow in os/signal.Stop ← github.com/athenaserving/asf/libs/lifecycle.SignalContext.func1 ← github.com/athenaserving/asf/libs/lifecycle.SignalContext.func1"
	if got := crashLine(log); got != want {
		t.Errorf("crashLine = %q\nwant %q", got, want)
	}
	panicLog := "starting\npanic: close of closed channel\n\ngoroutine 7 [running]:\nmain.stop()\n\t/src/main.go:10 +0x1\n"
	if got := crashLine(panicLog); got != "panic: close of closed channel in main.stop" {
		t.Errorf("crashLine(panic) = %q", got)
	}
	if got := crashLine(`{"level":"info","message":"stopped"}`); got != "" {
		t.Errorf("crashLine(clean log) = %q, want empty", got)
	}
}

func FuzzCrashLine(f *testing.F) {
	f.Add("panic: x\ngoroutine 1 [running]:\nmain.f()\n")
	f.Add("fatal error: y\n\ngoroutine 2 [running]:\nfoo(\n")
	f.Add("goroutine 1\n(")
	f.Fuzz(func(t *testing.T, s string) { _ = crashLine(s) })
}
