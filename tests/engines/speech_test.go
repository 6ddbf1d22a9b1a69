package engines

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/gorilla/websocket"
)

// sentences are synthesised and recognised back; every word is in the en-us dictionary.
var sentences = []string{
	"turn the kitchen light on",
	"open the front door",
	"what is the weather like today",
	"play some music in the living room",
}

// commandGrammar is a JSGF grammar whose sentences include every one of sentences (and
// a few others, so recognition has something to choose from).
func commandGrammar() string {
	alts := append([]string{"turn the kitchen light off", "close the front door", "stop the music"}, sentences...)
	return "#JSGF V1.0;\ngrammar commands;\npublic <command> = " + strings.Join(alts, " | ") + " ;\n"
}

const frameBytes = 1280 // 40 ms of 16 kHz 16-bit mono

func ttsOnceBody(text string) []byte {
	return []byte(fmt.Sprintf(`{"header":{"app_id":%q,"uid":"u1","status":3},"parameter":{"tts":{"voice":"en-us","speed":160,"pitch":50}},`+
		`"payload":{"text":{"encoding":"utf8","status":3,"text":%q}}}`, appID, base64.StdEncoding.EncodeToString([]byte(text))))
}

// synthesize returns the 16 kHz PCM of text from tts (signed HTTP once request).
func synthesize(t *testing.T, s *suitetest.Suite, text string) []byte {
	t.Helper()
	body := ttsOnceBody(text)
	validate(t, "tts", body)
	r := postOnce(t, s, "tts", body)
	out := r.Payload["audio"]
	if out == nil {
		t.Fatalf("tts: no audio output: %+v", r.Payload)
	}
	if sr, bd := attr(out, "sample_rate"), attr(out, "bit_depth"); sr != "16000" || bd != "16" {
		t.Fatalf("tts audio sample_rate=%s bit_depth=%s, want 16000/16", sr, bd)
	}
	pcm := bytesField(t, out, "audio")
	if len(pcm) < 16000 || len(pcm)%2 != 0 { // at least half a second
		t.Fatalf("tts %q: %d bytes of audio", text, len(pcm))
	}
	return pcm
}

// asrResult is the JSON document of one asr result.
type asrResult struct {
	Text  string `json:"text"`
	Final bool   `json:"final"`
	Seq   int    `json:"seq"`
}

// wsFrame is one ASE frame of an asr session.
func asrFrame(i, status int, audio []byte, params map[string]any) map[string]any {
	f := map[string]any{
		"header": map[string]any{"app_id": appID, "uid": "u1", "status": status},
		"payload": map[string]any{"audio": map[string]any{"encoding": "raw", "sample_rate": 16000, "channels": 1,
			"bit_depth": 16, "status": status, "seq": i, "audio": base64.StdEncoding.EncodeToString(audio)}},
	}
	if params != nil {
		f["parameter"] = map[string]any{"asr": params}
	}
	return f
}

func asrParams(grammar string) map[string]any {
	p := map[string]any{"result": map[string]any{"encoding": "utf8", "compress": "raw", "format": "json"}}
	if grammar != "" {
		p["grammar"] = grammar
	}
	return p
}

// sendFrame validates and writes one frame.
func sendFrame(t *testing.T, c *websocket.Conn, f map[string]any) {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, "asr", b)
	if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}

// readResults reads asr results until the one with status 2 (or an error frame) and
// sends them in order on the returned channel, then closes it.
func readResults(c *websocket.Conn) <-chan response {
	ch := make(chan response, 256)
	go func() {
		defer close(ch)
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			var r response
			if err := c.ReadJSON(&r); err != nil {
				return
			}
			ch <- r
			if r.Header.Code != 0 || r.Header.Status == 2 {
				return
			}
		}
	}()
	return ch
}

// recognize streams pcm to asr in 40 ms frames over a signed WebSocket and returns the
// partial texts (in arrival order) and the final text.
func recognize(t *testing.T, s *suitetest.Suite, pcm []byte, grammar string) (partials []string, final string) {
	t.Helper()
	c := dialWS(t, s, "asr")
	results := readResults(c)
	n := (len(pcm) + frameBytes - 1) / frameBytes
	for i := 0; i < n; i++ {
		chunk := pcm[i*frameBytes : min((i+1)*frameBytes, len(pcm))]
		switch {
		case i == 0:
			sendFrame(t, c, asrFrame(i, 0, chunk, asrParams(grammar)))
		default:
			sendFrame(t, c, asrFrame(i, 1, chunk, nil))
		}
	}
	sendFrame(t, c, asrFrame(n, 2, nil, nil))
	gotFinal := false
	for r := range results {
		if r.Header.Code != 0 {
			t.Fatalf("asr error frame: %+v", r.Header)
		}
		if gotFinal {
			t.Fatalf("result after the final one: %+v", r.Header)
		}
		var res asrResult
		jsonField(t, r.Payload["result"], "text", &res)
		if r.Header.Status == 2 {
			if !res.Final {
				t.Fatalf("status 2 result not final: %+v", res)
			}
			final, gotFinal = res.Text, true
			continue
		}
		if res.Final {
			t.Fatalf("final result with status %d", r.Header.Status)
		}
		partials = append(partials, res.Text)
	}
	if !gotFinal {
		t.Fatalf("asr session ended without a final result (partials %q)", partials)
	}
	return partials, final
}

// TestSpeechRoundTrip synthesises sentences with tts (signed HTTP), streams the audio to
// asr (signed WebSocket, 40 ms frames, a grammar containing the sentences) and gets each
// sentence back, with partial results before the final one.
func TestSpeechRoundTrip(t *testing.T) {
	tts := engineLib(t, "tts")
	asr := engineLib(t, "asr")
	s := startSuite(t,
		loaderSpec{service: "tts", engine: "c", path: tts, async: true},
		loaderSpec{service: "asr", engine: "c", path: asr, config: map[string]string{"lm": "none"}},
	)
	grammar := commandGrammar()
	for i, sentence := range sentences {
		t.Run(fmt.Sprint("sentence-", i), func(t *testing.T) {
			pcm := synthesize(t, s, sentence)
			partials, final := recognize(t, s, pcm, grammar)
			t.Logf("%q: %.2f s of audio, %d partial results %q, final %q", sentence, float64(len(pcm))/32000, len(partials), partials, final)
			if final != sentence {
				t.Fatalf("recognised %q, want %q", final, sentence)
			}
			if len(partials) == 0 {
				t.Fatalf("no partial result before the final one")
			}
		})
	}

	// Stream mode: the same text comes back in several chunks that together are as long as
	// the once request's audio (espeak-ng varies its voice slightly from call to call, so
	// the samples themselves differ).
	t.Run("tts-stream", func(t *testing.T) {
		text := sentences[0]
		want := synthesize(t, s, text)
		c := dialWS(t, s, "tts")
		results := readResults(c)
		for i, st := range []int{0, 2} {
			payload := ""
			if st == 0 {
				payload = base64.StdEncoding.EncodeToString([]byte(text))
			}
			f := map[string]any{
				"header":  map[string]any{"app_id": appID, "uid": "u1", "status": st},
				"payload": map[string]any{"text": map[string]any{"encoding": "utf8", "status": st, "seq": i, "text": payload}},
			}
			if st == 0 {
				f["parameter"] = map[string]any{"tts": map[string]any{"voice": "en-us", "speed": 160, "pitch": 50}}
			}
			b, _ := json.Marshal(f)
			validate(t, "tts", b)
			if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
				t.Fatal(err)
			}
		}
		var got []byte
		chunks, ended := 0, false
		for r := range results {
			if r.Header.Code != 0 {
				t.Fatalf("tts stream error: %+v", r.Header)
			}
			pcm := bytesField(t, r.Payload["audio"], "audio")
			if len(pcm) > 0 {
				chunks++
			}
			got = append(got, pcm...)
			ended = r.Header.Status == 2
		}
		t.Logf("stream: %d audio chunks, %d bytes (once: %d bytes)", chunks, len(got), len(want))
		if !ended || chunks < 2 {
			t.Fatalf("stream ended=%v with %d chunks, want several chunks then status 2", ended, chunks)
		}
		if d := math.Abs(float64(len(got)-len(want))) / float64(len(want)); d > 0.05 || len(got)%2 != 0 {
			t.Fatalf("stream audio %d bytes, once audio %d bytes", len(got), len(want))
		}
		// And it is still the sentence.
		if _, final := recognize(t, s, got, grammar); final != text {
			t.Fatalf("streamed audio recognised as %q, want %q", final, text)
		}
	})
}

// TestASRLicence: a licence of N on asr holds exactly N concurrent recognitions; the
// N+1th gets 10110, and a slot freed by a finished session is usable again.
func TestASRLicence(t *testing.T) {
	asr := engineLib(t, "asr")
	const n = 2
	s := startSuite(t, loaderSpec{service: "asr", engine: "c", path: asr, licence: n, config: map[string]string{"lm": "none"}})
	grammar := commandGrammar()
	silence := make([]byte, frameBytes)
	var open []*websocket.Conn
	var results []<-chan response
	for i := 0; i < n; i++ {
		c := dialWS(t, s, "asr")
		results = append(results, readResults(c))
		sendFrame(t, c, asrFrame(0, 0, silence, asrParams(grammar)))
		open = append(open, c)
	}
	l := s.Loaders[0]
	suitetest.WaitFor(t, 10*time.Second, func() bool { return gauge(t, l, "asf_loader_sessions_active") == n })

	extra := dialWS(t, s, "asr")
	extraResults := readResults(extra)
	sendFrame(t, extra, asrFrame(0, 0, silence, asrParams(grammar)))
	r, ok := <-extraResults
	if !ok || r.Header.Code != 10110 {
		t.Fatalf("session %d of a licence of %d: got %+v (ok=%v), want code 10110", n+1, n, r.Header, ok)
	}
	t.Logf("session %d refused: %d %s", n+1, r.Header.Code, r.Header.Message)
	if got := gauge(t, l, "asf_loader_sessions_active"); got != n {
		t.Fatalf("sessions active = %v after the refusal, want %d", got, n)
	}

	// End the first session; its slot serves a new recognition.
	sendFrame(t, open[0], asrFrame(1, 2, nil, nil))
	for r := range results[0] {
		if r.Header.Code != 0 {
			t.Fatalf("ending session 0: %+v", r.Header)
		}
	}
	suitetest.WaitFor(t, 10*time.Second, func() bool { return gauge(t, l, "asf_loader_sessions_active") == n-1 })
	pcm := make([]byte, 10*frameBytes)
	if _, final := recognize(t, s, pcm, grammar); final != "" {
		t.Logf("silence recognised as %q", final)
	}
}
