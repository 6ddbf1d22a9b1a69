package engines

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/athenaserving/asf/tests/webapitest"
)

// webapiClient is a WebAPI 2.0 client of the suite, as the demo app.
func webapiClient(s *suitetest.Suite) *webapitest.Client {
	d := suitetest.DemoApp
	return webapitest.New(s.URL(), webapitest.Credentials{AppID: d.AppID, APIKey: d.APIKey, APISecret: d.APISecret})
}

// ttsBusiness is the business object of a synthesis; the open platform's aue, auf and
// tte are sent as its clients send them.
var ttsBusiness = map[string]any{"vcn": "en-us", "pitch": 50, "aue": "raw", "auf": "audio/L16;rate=16000", "tte": "UTF8"}

// synthesizeWebAPI returns the PCM of text from POST /v2/tts (header form, Digest).
func synthesizeWebAPI(t *testing.T, c *webapitest.Client, text string) []byte {
	t.Helper()
	ctx, cancel := contextTimeout()
	defer cancel()
	r, err := c.Post(ctx, "/v2/tts", webapitest.Request{Common: c.Common(), Business: ttsBusiness,
		Data: map[string]any{"status": 2, "text": webapitest.B64([]byte(text))}}, webapitest.HeaderForm)
	if err != nil {
		t.Fatal(err)
	}
	if r.HTTPStatus != 200 || r.Code != 0 {
		t.Fatalf("POST /v2/tts: HTTP %d %s", r.HTTPStatus, r.Raw)
	}
	pcm, err := r.Bytes("audio")
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) < 16000 || len(pcm)%2 != 0 {
		t.Fatalf("tts %q: %d bytes of audio", text, len(pcm))
	}
	return pcm
}

// recognizeWebAPI streams pcm to /v2/iat in 1,280-byte frames with the grammar (and the
// open platform's language, domain and accent, which the demo engine does not use) and
// returns the partial texts and the final one.
func recognizeWebAPI(t *testing.T, c *webapitest.Client, pcm []byte, grammar string) (partials []string, final string) {
	t.Helper()
	ctx, cancel := contextTimeout()
	defer cancel()
	business := map[string]any{"language": "en_us", "domain": "iat", "accent": "mandarin", "grammar": grammar}
	rec, err := webapitest.Recognize(ctx, c, "/v2/iat", pcm, business, nil)
	if err != nil {
		t.Fatalf("recognize: %v (%d frames sent, results %s)", err, rec.Frames, rec.Results)
	}
	t.Logf("sent %d frames of %d bytes (data.status 0, 1…, 2)", rec.Frames, webapitest.FrameBytes)
	for _, raw := range rec.Raw {
		t.Logf("%s", raw)
	}
	for i, raw := range rec.Results {
		var res asrResult
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("data.result %s: %v", raw, err)
		}
		if rec.Statuses[i] == 2 {
			if !res.Final {
				t.Fatalf("status 2 result not final: %s", raw)
			}
			final = res.Text
			continue
		}
		if res.Final {
			t.Fatalf("final result with data.status %d", rec.Statuses[i])
		}
		partials = append(partials, res.Text)
	}
	return partials, final
}

// TestWebAPISpeechRoundTrip is TestSpeechRoundTrip over WebAPI 2.0: sentences are
// synthesised by POST /v2/tts and streamed back to the WebSocket /v2/iat by clients that
// know only the public WebAPI 2.0 description; the synthesis stream (/v2/tts over a
// WebSocket, one frame with data.status 2) is recognised too.
func TestWebAPISpeechRoundTrip(t *testing.T) {
	tts := engineLib(t, "tts")
	asr := engineLib(t, "asr")
	s, _ := startSuite(t,
		loaderSpec{service: "tts", engine: "c", path: tts, async: true},
		loaderSpec{service: "asr", engine: "c", path: asr, config: map[string]string{"lm": "none"}},
	)
	c := webapiClient(s)
	grammar := commandGrammar()
	for i, sentence := range sentences[:2] {
		t.Run(fmt.Sprint("sentence-", i), func(t *testing.T) {
			pcm := synthesizeWebAPI(t, c, sentence)
			partials, final := recognizeWebAPI(t, c, pcm, grammar)
			t.Logf("%q: %.2f s of audio, %d partial results %q, final %q", sentence, float64(len(pcm))/32000, len(partials), partials, final)
			if final != sentence {
				t.Fatalf("recognised %q, want %q", final, sentence)
			}
			if len(partials) == 0 {
				t.Fatalf("no partial result before the final one")
			}
		})
	}

	t.Run("tts-stream", func(t *testing.T) {
		text := sentences[2]
		ctx, cancel := contextTimeout()
		defer cancel()
		chunks, err := webapitest.Synthesize(ctx, c, "/v2/tts", text, ttsBusiness)
		if err != nil {
			t.Fatal(err)
		}
		var pcm []byte
		n := 0
		for _, ch := range chunks {
			if len(ch) > 0 {
				n++
			}
			pcm = append(pcm, ch...)
		}
		t.Logf("stream: %d audio chunks, %d bytes", n, len(pcm))
		if n < 2 {
			t.Fatalf("%d audio chunks, want several", n)
		}
		if _, final := recognizeWebAPI(t, c, pcm, grammar); final != text {
			t.Fatalf("streamed audio recognised as %q, want %q", final, text)
		}
	})

	// The Python client of examples/webapi (websocket-client, as the open platform's
	// demos use) recognises the synthesised audio too.
	t.Run("python-client", func(t *testing.T) {
		if out, err := exec.Command("/usr/bin/python3", "-c", "import websocket").CombinedOutput(); err != nil {
			t.Skipf("/usr/bin/python3 cannot import websocket (Debian python3-websocket): %s", out)
		}
		dir := t.TempDir()
		sentence := sentences[1]
		pcm, gram := filepath.Join(dir, "audio.pcm"), filepath.Join(dir, "commands.jsgf")
		if err := os.WriteFile(pcm, synthesizeWebAPI(t, c, sentence), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(gram, []byte(grammar), 0o600); err != nil {
			t.Fatal(err)
		}
		d := suitetest.DemoApp
		out, err := exec.Command("/usr/bin/python3", filepath.Join(repoRoot(t), "examples", "webapi", "iat_client.py"),
			"--url", "ws"+strings.TrimPrefix(s.URL(), "http")+"/v2/iat", "--app-id", d.AppID, "--api-key", d.APIKey, "--api-secret", d.APISecret,
			"--audio", pcm, "--grammar", gram, "--fast").CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatalf("iat_client.py: %v", err)
		}
		if want := `status 2: {"final": true, "seq": `; !strings.Contains(string(out), want) || !strings.Contains(string(out), `"text": "`+sentence+`"}`) {
			t.Fatalf("iat_client.py did not print the final result %q", sentence)
		}
	})

	// What the demo engines cannot do is refused by the published schemas: 8 kHz audio,
	// MP3 output.
	t.Run("schema-refusal", func(t *testing.T) {
		ctx, cancel := contextTimeout()
		defer cancel()
		r, err := c.Post(ctx, "/v2/tts", webapitest.Request{Common: c.Common(), Business: map[string]any{"aue": "lame"},
			Data: map[string]any{"status": 2, "text": webapitest.B64([]byte("hello"))}}, webapitest.URLForm)
		if err != nil {
			t.Fatal(err)
		}
		if r.HTTPStatus != 400 || r.Code != 10163 {
			t.Fatalf("tts aue lame: HTTP %d %s, want 400 and code 10163", r.HTTPStatus, r.Raw)
		}
		conn, err := c.Dial(ctx, "/v2/iat", webapitest.URLForm)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Send(webapitest.Request{Common: c.Common(), Data: map[string]any{"status": 0, "format": "audio/L16;rate=8000",
			"encoding": "raw", "audio": webapitest.B64(make([]byte, webapitest.FrameBytes))}}); err != nil {
			t.Fatal(err)
		}
		r, err = conn.Recv(30 * time.Second)
		if err != nil || r.Code != 10163 {
			t.Fatalf("iat at 8 kHz: %+v %v, want code 10163", r, err)
		}
		t.Logf("refused: %s", r.Raw)
	})
}
