package webgate

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// strictSchema requires header.app_id and parameter.strict.lang, so a follow-up frame that
// carries only part of the header or parameter fails unless it is validated against the
// session's merged view.
const strictSchema = `{
 "meta":{"serviceId":"strict"},
 "schemainput":{"type":"object","required":["header"],"properties":{
   "header":{"type":"object","required":["app_id"],"properties":{"app_id":{"type":"string"},"status":{"type":"integer"}}},
   "parameter":{"type":"object","properties":{"strict":{"type":"object","required":["lang"],
     "properties":{"lang":{"type":"string"},"n":{"type":"integer"}}}}},
   "payload":{"type":"object"}}}
}`

func strictFiles() map[string]string {
	f := defaultFiles()
	f["capabilities/schema_strict.json"] = strictSchema
	return f
}

// A follow-up WebSocket frame whose header carries only status (or whose parameter only
// part of the first frame's) is validated against the first frame's header and parameter
// overlaid with its own fields.
func TestWebSocketFollowUpPartialHeader(t *testing.T) {
	e := start(t, func(c *Config) { c.Auth = "off" }, strictFiles())

	conn, _, err := dialWS(t, e.wsURL("/v1/private/strict"))
	require.NoError(t, err)
	send(t, conn, `{"header":{"app_id":"a","status":0},"parameter":{"strict":{"lang":"en"}},"payload":{"input":{"status":0,"seq":0,"text":"aGk="}}}`)
	r := readResponse(t, conn)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)

	send(t, conn, `{"header":{"status":1},"payload":{"input":{"status":1,"seq":1,"text":"aGk="}}}`)
	r = readResponse(t, conn)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	assert.Equal(t, 1, *r.Header.Status)

	send(t, conn, `{"header":{"status":2},"parameter":{"strict":{"n":3}},"payload":{"input":{"status":2,"seq":2,"text":"aGk="}}}`)
	r = readResponse(t, conn)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	assert.Equal(t, 2, *r.Header.Status)
	assert.Equal(t, websocket.CloseNormalClosure, readClose(t, conn).Code)

	// The follow-up's own fields are still validated, over the merged view.
	conn, _, err = dialWS(t, e.wsURL("/v1/private/strict"))
	require.NoError(t, err)
	send(t, conn, `{"header":{"app_id":"a","status":0},"parameter":{"strict":{"lang":"en"}},"payload":{"input":{"status":0,"seq":0,"text":"aGk="}}}`)
	r = readResponse(t, conn)
	require.Equal(t, 0, r.Header.Code, r.Header.Message)
	send(t, conn, `{"header":{"status":1,"app_id":7},"payload":{"input":{"status":1,"seq":1,"text":"aGk="}}}`)
	r = readResponse(t, conn)
	assert.Equal(t, 10163, r.Header.Code)
	assert.Contains(t, r.Header.Message, "app_id")

	// A first frame without app_id is refused: nothing to inherit.
	conn, _, err = dialWS(t, e.wsURL("/v1/private/strict"))
	require.NoError(t, err)
	send(t, conn, `{"header":{"status":0},"parameter":{"strict":{"lang":"en"}},"payload":{"input":{"status":0,"seq":0,"text":"aGk="}}}`)
	r = readResponse(t, conn)
	assert.Equal(t, 10163, r.Header.Code)
	assert.Contains(t, r.Header.Message, "app_id")
}
