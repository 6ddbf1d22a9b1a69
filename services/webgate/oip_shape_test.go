package webgate

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOIPShapeMismatch: an infer request whose tensor data does not match its shape is
// answered 400 with a message saying so, counted as 10163, and never reaches atom.
func TestOIPShapeMismatch(t *testing.T) {
	e := start(t, func(c *Config) { c.RequireSchema = true }, defaultFiles())
	body := `{"id":"r1","inputs":[{"name":"input","shape":[2],"datatype":"BYTES","data":["hello"]}]}`
	st, got, _ := post(t, signURL(t, e.url("/v2/models/echo/infer"), "POST", app1, time.Now()), body)
	require.Equal(t, 400, st, got)
	assert.JSONEq(t, `{"error":"inputs.input: shape (2) holds 2 elements, data has 1"}`, got)
	assert.Nil(t, e.atom.lastCall(), "refused at the edge")
	assert.Equal(t, 1.0, metricValue(t, e.reg, "asf_webgate_requests_total", map[string]string{"capability": "echo", "kind": "oip", "code": "10163"}))

	body = `{"id":"r2","inputs":[{"name":"input","shape":[1,2],"datatype":"BYTES","data":[["hel","lo"]]}]}`
	st, got, _ = post(t, signURL(t, e.url("/v2/models/echo/infer"), "POST", app1, time.Now()), body)
	require.Equal(t, 200, st, got)
	assert.Equal(t, "hello", string(e.atom.lastCall().GetPayload()[0].GetData()))
}

// TestOIPBodyTooLarge: an infer body over the limit is 413 with 10163, as on the ASE path.
func TestOIPBodyTooLarge(t *testing.T) {
	e := start(t, func(c *Config) { c.RequireSchema = true; c.MaxBodyBytes = 1024 }, defaultFiles())
	body := `{"id":"r1","inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["` + strings.Repeat("a", 2048) + `"]}]}`
	st, got, _ := post(t, signURL(t, e.url("/v2/models/echo/infer"), "POST", app1, time.Now()), body)
	require.Equal(t, 413, st, got)
	assert.Nil(t, e.atom.lastCall(), "refused at the edge")
}
