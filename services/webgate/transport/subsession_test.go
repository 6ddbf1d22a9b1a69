package transport

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type muxResponse struct {
	Header struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Cid     string `json:"cid"`
		Status  *int   `json:"status"`
	} `json:"header"`
}

func muxFrame(cid string, status int) string {
	return fmt.Sprintf(`{"header":{"app_id":"app1","cid":%q,"status":%d},"payload":{"input":{"encoding":"utf8","status":%d,"seq":%d,"text":"aGk="}}}`, cid, status, status, status)
}

func readMux(t *testing.T, conn *websocket.Conn) muxResponse {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	var r muxResponse
	require.NoError(t, conn.ReadJSON(&r))
	return r
}

func sendMux(t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(msg)))
}

// startSub begins sub-session cid and checks its first result.
func startSub(t *testing.T, conn *websocket.Conn, cid string) {
	t.Helper()
	sendMux(t, conn, muxFrame(cid, 0))
	r := readMux(t, conn)
	require.Equal(t, cid, r.Header.Cid)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
}

// endSub ends sub-session cid and checks its last result.
func endSub(t *testing.T, conn *websocket.Conn, cid string) {
	t.Helper()
	sendMux(t, conn, muxFrame(cid, 2))
	r := readMux(t, conn)
	require.Equal(t, cid, r.Header.Cid)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	require.Equal(t, 2, *r.Header.Status)
}

// signedWSURL is the signed WebSocket URL of path on srvURL (URL-parameter form).
func signedWSURL(srvURL, path, key, secret string, extra string) string {
	u, _ := url.Parse(srvURL)
	date := time.Now().UTC().Format(http.TimeFormat)
	origin := "host: " + u.Host + "\ndate: " + date + "\nGET " + path + " HTTP/1.1"
	authz := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"`, key, auth.Sign(secret, origin))
	q := url.Values{"authorization": {base64.StdEncoding.EncodeToString([]byte(authz))}, "date": {date}, "host": {u.Host}}
	return "ws" + strings.TrimPrefix(srvURL, "http") + path + "?" + q.Encode() + extra
}

// One multiplexed socket runs at most MaxSubSessions sub-sessions at once: the next one is
// refused with 11204 on its cid, and the socket and its other sub-sessions go on.
func TestMultiplexSubSessionCap(t *testing.T) {
	g := startGate(t, func(o *Options) { o.MaxSubSessions = 3 })
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(g.srv.URL, "http")+"/v1/private/echo?stream_mode=multiplex", nil)
	require.NoError(t, err)
	defer conn.Close()
	for _, cid := range []string{"a", "b", "c"} {
		startSub(t, conn, cid)
	}
	sendMux(t, conn, muxFrame("d", 0))
	r := readMux(t, conn)
	assert.Equal(t, "d", r.Header.Cid)
	assert.Equal(t, gate.ErrSubSessionLimit.Code, r.Header.Code)
	assert.Equal(t, "too many sub-sessions on this connection", r.Header.Message)

	// A late frame of the refused sub-session is dropped: the next answer is b's.
	sendMux(t, conn, muxFrame("d", 1))
	sendMux(t, conn, muxFrame("b", 1))
	r = readMux(t, conn)
	assert.Equal(t, "b", r.Header.Cid)
	assert.Equal(t, 0, r.Header.Code)

	// Once one ends there is room again, on the same socket.
	endSub(t, conn, "a")
	startSub(t, conn, "e")
	for _, cid := range []string{"b", "c", "e"} {
		endSub(t, conn, cid)
	}
}

func TestMultiplexSubSessionCapDefault(t *testing.T) {
	g := startGate(t, nil)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(g.srv.URL, "http")+"/v1/private/echo?stream_mode=multiplex", nil)
	require.NoError(t, err)
	defer conn.Close()
	for i := range gate.DefaultMaxSubSessions {
		startSub(t, conn, fmt.Sprint("s", i))
	}
	sendMux(t, conn, muxFrame("over", 0))
	r := readMux(t, conn)
	assert.Equal(t, "over", r.Header.Cid)
	assert.Equal(t, gate.ErrSubSessionLimit.Code, r.Header.Code)
}

// Each sub-session of a multiplexed socket counts against the app's max_sessions (the
// socket's own lease covers its first one): one socket cannot hold more than the app's
// share, and the slots come back as sub-sessions end.
func TestMultiplexSubSessionsCountAgainstMaxSessions(t *testing.T) {
	apps, err := auth.ParseApps([]byte(`[{"app_id":"app1","api_key":"key1","api_secret":"secret1","max_sessions":3}]`))
	require.NoError(t, err)
	authn := auth.NewAuthenticator(0)
	authn.SetApps(apps)
	lim := auth.NewLimiter()
	g := startGate(t, func(o *Options) { o.Auth, o.Limiter = authn, lim })
	dial := func(extra string) (*websocket.Conn, *http.Response, error) {
		return websocket.DefaultDialer.Dial(signedWSURL(g.srv.URL, "/v1/private/echo", "key1", "secret1", extra), nil)
	}
	conn, _, err := dial("&stream_mode=multiplex")
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, 1, lim.Active("app1"), "an idle multiplexed socket counts once")
	startSub(t, conn, "a")
	assert.Equal(t, 1, lim.Active("app1"), "its first sub-session is the socket's")
	startSub(t, conn, "b")
	startSub(t, conn, "c")
	assert.Equal(t, 3, lim.Active("app1"))

	// The app is at its limit: a fourth sub-session is refused on its cid ...
	sendMux(t, conn, muxFrame("d", 0))
	r := readMux(t, conn)
	assert.Equal(t, "d", r.Header.Cid)
	assert.Equal(t, gate.ErrConnLimit.Code, r.Header.Code)
	assert.Equal(t, "max connections exceeded", r.Header.Message)
	// ... and so is another socket of the app.
	_, resp, err := dial("")
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Ending a sub-session frees its slot for anyone of the app.
	endSub(t, conn, "b")
	waitFor(t, 5*time.Second, func() bool { return lim.Active("app1") == 2 })
	other, _, err := dial("")
	require.NoError(t, err)
	assert.Equal(t, 3, lim.Active("app1"))
	require.NoError(t, other.Close())
	waitFor(t, 5*time.Second, func() bool { return lim.Active("app1") == 2 })

	// Lowering the limit ends the newest sub-session with 11203; the socket goes on.
	lowered, err := auth.ParseApps([]byte(`[{"app_id":"app1","api_key":"key1","api_secret":"secret1","max_sessions":1}]`))
	require.NoError(t, err)
	authn.SetApps(lowered)
	assert.Equal(t, 1, lim.Enforce(lowered))
	r = readMux(t, conn)
	assert.Equal(t, "c", r.Header.Cid)
	assert.Equal(t, gate.ErrConnLimit.Code, r.Header.Code)
	waitFor(t, 5*time.Second, func() bool { return lim.Active("app1") == 1 })
	endSub(t, conn, "a")
	startSub(t, conn, "f")
	endSub(t, conn, "f")

	require.NoError(t, conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
	waitFor(t, 5*time.Second, func() bool { return lim.Active("app1") == 0 })
}
