package httpio

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/webgate/gate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadBody: a body within the bound is read whole; one over it is ErrTooLarge (HTTP
// 413), refused from its Content-Length before a byte is read or counted as it arrives;
// one shorter than its Content-Length is the client's error (10163).
func TestReadBody(t *testing.T) {
	read := func(body string, contentLength int64) ([]byte, error) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.ContentLength = contentLength
		return ReadBody(httptest.NewRecorder(), r, 8)
	}
	b, err := read("12345678", 8)
	require.NoError(t, err)
	assert.Equal(t, "12345678", string(b))
	b, err = read("1234", -1)
	require.NoError(t, err)
	assert.Equal(t, "1234", string(b))

	var tl *gate.ErrTooLarge
	_, err = read("", 9)
	assert.True(t, errors.As(err, &tl), "%v", err)
	_, err = read("123456789", -1)
	assert.True(t, errors.As(err, &tl), "%v", err)
	assert.Equal(t, aserr.ErrBadRequest.Code, aserr.CodeOf(err))

	_, err = read("123", 5)
	assert.False(t, errors.As(err, &tl))
	assert.Equal(t, aserr.ErrBadRequest.Code, aserr.CodeOf(err))

	r := httptest.NewRequest(http.MethodPost, "/", iotest.ErrReader(errors.New("reset")))
	r.ContentLength = -1
	_, err = ReadBody(httptest.NewRecorder(), r, 8)
	assert.Equal(t, aserr.ErrBadRequest.Code, aserr.CodeOf(err))
}

// TestReadLimited: it stops at the limit, whatever is left to read.
func TestReadLimited(t *testing.T) {
	b, err := ReadLimited(iotest.OneByteReader(strings.NewReader("abcdef")), 4, make([]byte, 0, 1))
	require.NoError(t, err)
	assert.Equal(t, "abcd", string(b))
	b, err = ReadLimited(strings.NewReader("ab"), 4, nil)
	require.NoError(t, err)
	assert.Equal(t, "ab", string(b))
}

func TestTimingHeader(t *testing.T) {
	assert.Equal(t, "webgate=1500;atom=5;loader=4;engine=0",
		TimingHeader(1500*time.Microsecond, map[string]int64{"atom_ns": 5000, "loader_ns": 4999}))
}

func TestWriteMessage(t *testing.T) {
	w := httptest.NewRecorder()
	WriteMessage(w, http.StatusServiceUnavailable, `say "no"`)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
	assert.Equal(t, `{"message":"say \"no\""}`, w.Body.String())
}
