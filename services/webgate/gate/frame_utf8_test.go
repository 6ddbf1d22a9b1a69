package gate

import (
	"context"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/rs/zerolog"
)

// TestDecodeFrameRefusesInvalidUTF8 checks that invalid UTF-8 anywhere in the envelope's
// strings is the client's error (10163), never a marshalling failure on the way to atom.
func TestDecodeFrameRefusesInvalidUTF8(t *testing.T) {
	g := &Gate{log: zerolog.Nop()}
	info := &Request{Capability: "c", SID: "s"}
	for name, msg := range map[string]string{
		"header value":          "{\"header\":{\"uid\":\"\xff\"}}",
		"header key":            "{\"header\":{\"u\xc3\":\"1\"}}",
		"parameter value":       "{\"parameter\":{\"c\":{\"p\":\"\xe2\x82\"}}}",
		"parameter key":         "{\"parameter\":{\"c\":{\"\xff\":1}}}",
		"descriptor name":       "{\"parameter\":{\"c\":{\"\xff\":{\"format\":\"json\"}}}}",
		"descriptor attribute":  "{\"parameter\":{\"c\":{\"r\":{\"format\":\"\xff\"}}}}",
		"payload name":          "{\"payload\":{\"in\xff\":{\"text\":\"AA==\"}}}",
		"payload attribute":     "{\"payload\":{\"in\":{\"text\":\"AA==\",\"encoding\":\"\xc0\xaf\"}}}",
		"payload attribute key": "{\"payload\":{\"in\":{\"text\":\"AA==\",\"\xed\xa0\x80\":\"x\"}}}",
	} {
		_, _, err := g.DecodeFrame(context.Background(), info, []byte(msg), statusUnset, true, nil)
		if code := aserr.CodeOf(err); code != aserr.ErrBadRequest.Code {
			t.Errorf("%s: code %d (%v), want 10163", name, code, err)
		}
	}
	// Escaped and multi-byte text is fine.
	ok := `{"header":{"uid":"\u00e9t\u00e9 été"},"payload":{"in":{"text":"AA==","note":"日本"}}}`
	if _, _, err := g.DecodeFrame(context.Background(), info, []byte(ok), statusUnset, true, nil); err != nil {
		t.Fatalf("valid UTF-8 refused: %v", err)
	}
}
