package ase

import (
	"regexp"
	"strings"
	"testing"
)

func TestPublicMessage(t *testing.T) {
	for _, tc := range []struct {
		code     int
		msg, out string
	}{
		// Transport detail from an internal hop: only the code's description is left.
		{10222, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:34143: connect: connection refused"`, "network error"},
		{10222, `rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp [::1]:5090: connect: connection refused"`, "network error"},
		{10222, `loader 10.1.2.3:5090: read tcp 10.1.2.4:51234->10.1.2.3:5090: read: connection reset by peer: network error`, "loader: network error"},
		{10222, `loader reset the call: transport is closing: network error`, "loader reset the call: network error"},
		{11502, `goroutine 17 [running]: main.go:12`, "unexpected server error"},
		{10223, `no engine node available (code 10223)`, "no engine node available"},
		// Reasons stay; addresses, pids and worker numbers inside them go.
		{10106, `output "boxes" not among the expected outputs: invalid output or parameter`, `output "boxes" not among the expected outputs: invalid output or parameter`},
		{10109, `worker 3 (pid 41234) exited: engine crashed`, "worker exited: engine crashed"},
		{10109, `engine worker 2 at /tmp/asf-w/w2.sock died: engine crashed`, "engine worker at died: engine crashed"},
		{10222, `loader loader-1.asf.svc:5090 unreachable`, "loader unreachable"},
		{10222, `loader fe80::1%eth0 unreachable`, "loader unreachable"},
		// An engine's own message is kept as it is.
		{10110, "licence not enough", "licence not enough"},
		{20001, "model not loaded: tts voice xiaoyan", "model not loaded: tts voice xiaoyan"},
		{10163, `payload.input.text: want string`, `payload.input.text: want string`},
		{99999, "", "error"},
	} {
		if got := PublicMessage(tc.code, tc.msg); got != tc.out {
			t.Errorf("PublicMessage(%d, %q) = %q, want %q", tc.code, tc.msg, got, tc.out)
		}
	}
	long := strings.Repeat("é", 2000)
	if got := PublicMessage(10163, long); len(got) > maxPublicMessage || !strings.HasPrefix(long, got) {
		t.Errorf("long message not cut at a rune boundary: %d bytes", len(got))
	}
}

var leak = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}:\d+|(?i)dial tcp|rpc error|\(code \d+\)`)

func FuzzPublicMessage(f *testing.F) {
	f.Add(10222, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:34143: connect: connection refused"`)
	f.Add(10106, `output "boxes" not among the expected outputs: invalid output or parameter`)
	f.Add(10109, `worker 3 (pid 41234) exited: engine crashed`)
	f.Add(0, "1.2.31.2.3.4:5.4:80")
	f.Fuzz(func(t *testing.T, code int, msg string) {
		got := PublicMessage(code, msg)
		if got == "" {
			t.Fatal("empty public message")
		}
		if len(got) > maxPublicMessage {
			t.Fatalf("%d bytes", len(got))
		}
		if m := leak.FindString(got); m != "" {
			t.Fatalf("PublicMessage(%q) = %q leaks %q", msg, got, m)
		}
		if again := PublicMessage(code, got); again != got {
			t.Fatalf("not stable: %q → %q → %q", msg, got, again)
		}
	})
}

func TestPublicMessageKeepsQuotedNames(t *testing.T) {
	const in = `pick echo: lb pick: pick "echo": 1 loaders known, none in rotation: no engine node available`
	if got := PublicMessage(10223, in); got != in {
		t.Fatalf("PublicMessage = %q, want it unchanged", got)
	}
}
