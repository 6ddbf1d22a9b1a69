package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// buildBinaries builds the five services into a temporary directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.work not found: the services are not beside this module")
		}
		dir = parent
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/",
		"./services/polaris/cmd/polaris", "./services/lbclient/cmd/lbclient", "./services/loader/cmd/loader",
		"./services/atom/cmd/atom", "./services/webgate/cmd/webgate")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestKillAtomAndLBClientUnderLoad runs the suite as real processes (two atoms, two
// lbclients), kills one atom and one lbclient with SIGKILL under steady once and stream
// load, and checks that only what was in flight on them failed: every request and
// session started after the kill succeeds, and every session ends with its results or
// one error frame. The killed processes are then restarted on their addresses.
func TestKillAtomAndLBClientUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service binary and runs the suite")
	}
	bin := buildBinaries(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var f Fault
	for _, x := range Faults() {
		if x.Name == "SIGKILL an atom and an lbclient" {
			f = x
		}
	}
	res, err := RunFault(ctx, Options{BinDir: bin, LogDir: t.TempDir(), Warm: time.Second, Window: 3 * time.Second,
		OnceWorkers: 3, StreamWorkers: 2}, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", Markdown([]Result{res}))
	if !res.Pass() {
		t.Fatalf("thresholds: %v", res.Violations)
	}
	if res.Restart <= 0 {
		t.Fatal("the killed processes were not restarted")
	}
}

// TestEvaluate checks the thresholds on recorded ops without processes.
func TestEvaluate(t *testing.T) {
	t0 := time.Now()
	fault, hit := t0.Add(time.Second), t0.Add(time.Second+time.Millisecond)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ops := []Op{
		{Start: at(0), End: at(500)},                       // before the fault: not counted
		{Start: at(900), End: at(1010), Err: "code 10222"}, // cut
		{Start: at(1100), End: at(1200)},                   // ok
		{Stream: true, Start: at(950), End: at(1100), Err: "error frame 10222"},
		{Stream: true, Start: at(1100), End: at(1300)},
	}
	res := Result{Fault: Fault{Name: "x", Kind: Kill}, InFlightOnce: 1, InFlightStream: 1}
	Evaluate(&res, ops, fault, hit)
	if !res.Pass() || res.Once != (Counts{Total: 2, Failed: 1, Cut: 1}) || res.Stream != (Counts{Total: 2, Failed: 1, Cut: 1}) {
		t.Fatalf("%+v", res)
	}
	if res.Recovery != 100*time.Millisecond {
		t.Fatalf("recovery %s", res.Recovery)
	}
	late := append(ops, Op{Start: at(1500), End: at(1600), Err: "code 10222"}, Op{Stream: true, Start: at(1500), End: at(1600), Err: "write", Bad: true})
	res = Result{Fault: Fault{Name: "x", Kind: Kill, ZeroOnce: true}, InFlightOnce: 1, InFlightStream: 1}
	Evaluate(&res, late, fault, hit)
	if res.Pass() || len(res.Violations) != 4 { // once late, stream late, once zero, bad session
		t.Fatalf("violations %q", res.Violations)
	}
}
