package webgate

import (
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionCountedWhenClientDropsAfterResult: a client that reads its session's last
// result and then drops TCP without a close frame has had its session served; it is
// counted with code 0, not as a network error (10222). A session cut off by the drop
// before its last result is 10222.
func TestSessionCountedWhenClientDropsAfterResult(t *testing.T) {
	e := start(t, func(c *Config) { c.Auth = "off" }, defaultFiles())
	const n = 30
	stream := func(code string) float64 {
		return metricValue(t, e.reg, "asf_webgate_requests_total", map[string]string{"capability": "echo", "kind": "stream", "code": code})
	}
	for i := range n {
		conn, _, err := dialWS(t, e.wsURL("/v1/private/echo"))
		require.NoError(t, err)
		send(t, conn, frame("a", "", 0, 0))
		readResponse(t, conn)
		send(t, conn, frame("a", "", 2, 1))
		r := readResponse(t, conn)
		require.Equal(t, 0, r.Header.Code, r.Header.Message)
		require.Equal(t, 2, *r.Header.Status)
		require.NoError(t, conn.UnderlyingConn().Close(), "session %d", i)
	}
	testpoll.Until(t, 5*time.Second, "every session counted", func() bool { return stream("0")+stream("10222") == n })
	assert.Equal(t, float64(n), stream("0"))
	assert.Zero(t, stream("10222"))

	// Cut off before its last result: 10222.
	conn, _, err := dialWS(t, e.wsURL("/v1/private/echo"))
	require.NoError(t, err)
	send(t, conn, frame("a", "", 0, 0))
	readResponse(t, conn)
	require.NoError(t, conn.UnderlyingConn().Close())
	testpoll.Until(t, 5*time.Second, "the cut-off session counted", func() bool { return stream("10222") == 1 })
	assert.Equal(t, float64(n), stream("0"))
}
