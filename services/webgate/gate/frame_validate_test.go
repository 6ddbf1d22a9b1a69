package gate

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/capability"
	"github.com/athenaserving/asf/services/webgate/ase"
	"github.com/stretchr/testify/require"
)

// sessionSchema requires header.app_id and parameter.s.lang, so a later frame that carries
// only part of them passes only over the first frame's.
const sessionSchema = `{"meta":{"serviceId":"s"},
 "schemainput":{"type":"object","required":["header"],"properties":{
   "header":{"type":"object","required":["app_id"],"properties":{"app_id":{"type":"string","maxLength":8},"status":{"type":"integer"}}},
   "parameter":{"type":"object","properties":{"s":{"type":"object","required":["lang"],"properties":{"lang":{"enum":["en","fr"]}}}}},
   "payload":{"type":"object","properties":{"input":{"type":"object","properties":{"seq":{"type":"integer","minimum":0}}}}}}}}`

// A first frame that later frames may follow keeps only what they inherit (header and
// parameter, decoded, never the payload); a once or last frame, and later frames, keep
// nothing.
func TestDecodeFrameKeepsWhatLaterFramesInherit(t *testing.T) {
	sch, err := capability.Parse([]byte(sessionSchema))
	require.NoError(t, err)
	g := &Gate{}
	info := &Request{Capability: "s", Schema: sch, SID: "sid", ClientIP: "127.0.0.1"}
	ctx := context.Background()
	first := `{"header":{"app_id":"a","status":0},"parameter":{"s":{"lang":"en"}},"payload":{"input":{"seq":0,"audio":"AAEC"}}}`

	_, doc, err := g.DecodeFrame(ctx, info, []byte(first), ase.StatusContinue, true, nil)
	require.NoError(t, err)
	got, err := json.Marshal(doc)
	require.NoError(t, err)
	require.JSONEq(t, `{"header":{"app_id":"a","status":0},"parameter":{"s":{"lang":"en"}}}`, string(got))

	for _, status := range []int32{ase.StatusOnce, ase.StatusEnd} {
		once := `{"header":{"app_id":"a"},"parameter":{"s":{"lang":"en"}},"payload":{"input":{"seq":0,"audio":"AAEC"}}}`
		_, kept, err := g.DecodeFrame(ctx, info, []byte(once), status, true, nil)
		require.NoError(t, err)
		require.Nil(t, kept, "status %d", status)
	}

	// Later frames: validated over the first frame's header and parameter, their own
	// fields still checked.
	for later, wantErr := range map[string]string{
		`{"header":{"status":1},"payload":{"input":{"seq":1,"audio":"AAEC"}}}`:                    "",
		`{"parameter":{"s":{}},"payload":{"input":{"seq":2,"audio":"AAEC"}}}`:                     "",
		`{"header":{"app_id":"much-too-long"},"payload":{"input":{"seq":1,"audio":"AAEC"}}}`:      "at '/header/app_id': maxLength: got 13, want 8",
		`{"parameter":{"s":{"lang":"de"}},"payload":{"input":{"seq":1,"audio":"AAEC"}}}`:          "at '/parameter/s/lang': value must be one of 'en', 'fr'",
		`{"header":{"status":1},"payload":{"input":{"seq":-1,"audio":"AAEC"}}}`:                   "at '/payload/input/seq': minimum: got -1, want 0",
		`{"header":{"st\u0061tus":1,"app_id":null},"payload":{"input":{"seq":1,"audio":"AAEC"}}}`: "",
	} {
		_, kept, err := g.DecodeFrame(ctx, info, []byte(later), ase.StatusContinue, false, doc)
		if wantErr == "" {
			require.NoError(t, err, later)
			require.Nil(t, kept, later)
			continue
		}
		require.Error(t, err, later)
		require.Equal(t, aserr.ErrBadRequest.Code, aserr.CodeOf(err), later)
		require.Equal(t, wantErr, aserr.MessageOf(err), later)
	}

	// Without the first frame's fields the same later frame is refused.
	_, _, err = g.DecodeFrame(ctx, info, []byte(`{"header":{"status":1},"payload":{"input":{"seq":1,"audio":"AAEC"}}}`), ase.StatusContinue, false, nil)
	require.Error(t, err)
	require.Equal(t, "at '/header': missing property 'app_id'", aserr.MessageOf(err))
}
