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
