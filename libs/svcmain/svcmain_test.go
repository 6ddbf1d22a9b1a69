package svcmain

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

type childConfig struct {
	LogLevel string `cfg:"log-level"`
}

// slowService takes until its shutdown deadline to stop, and then stops cleanly.
type slowService struct{}

func (slowService) Start(context.Context) error { return nil }

func (slowService) Shutdown(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// TestMain lets the test binary play the service process for TestSecondSignalExitsAtOnce.
func TestMain(m *testing.M) {
	if os.Getenv("SVCMAIN_TEST_CHILD") == "1" {
		Main("slow", childConfig{}, func(childConfig, zerolog.Logger, *prometheus.Registry) (Service, error) {
			return slowService{}, nil
		})
	}
	os.Exit(m.Run())
}

// TestSecondSignalExitsAtOnce runs a real process whose shutdown would take its whole bound:
// the first SIGTERM starts that shutdown, the second ends the process at once with exit
// code 1, before the shutdown could log "stopped" and exit 0.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SVCMAIN_TEST_CHILD=1")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := bufio.NewScanner(stderr)
	waitLine := func(msg string) {
		t.Helper()
		for lines.Scan() {
			if strings.Contains(lines.Text(), `"message":"`+msg) {
				return
			}
		}
		t.Fatalf("the process ended before logging %q", msg)
	}
	waitLine("ready")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waitLine("signal received")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "exit status: %v", err)
	require.Equal(t, 1, exit.ExitCode())
	for _, l := range rest {
		require.NotContains(t, l, `"message":"stopped"`)
	}
}

// runChild runs the test binary as the service process "slow" with args and returns its
// exit code, stdout and stderr.
func runChild(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SVCMAIN_TEST_CHILD=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stdout.String(), stderr.String()
}

func TestHelpVersionAndBadFlagExitCodes(t *testing.T) {
	code, _, stderr := runChild(t, "--help")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "-log-level")

	code, stdout, _ := runChild(t, "--version")
	require.Equal(t, 0, code)
	require.Regexp(t, `^slow version dev commit \S+( \(modified\))? go1\.\d+`, stdout)

	code, _, stderr = runChild(t, "--log-level", "nope")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `slow: config: invalid value "nope" for flag -log-level`)
	require.NotContains(t, stderr, "ready")
}
