package engines

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/tests/asetest"
	"github.com/athenaserving/asf/tests/suitetest"
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

var user = map[string]any{"uid": "u1"}

// ttsFrame is a tts request frame; params are sent unless status is 1 or 2.
func ttsFrame(status int, text string, seq *int) asetest.Frame {
	f := asetest.Frame{Status: status, Header: user, Seq: seq, Payload: map[string]asetest.Data{"text": asetest.Text(text)}}
	if status == 0 || status == 3 {
		f.Params = map[string]any{"voice": "en-us", "speed": 160, "pitch": 50}
	}
	return f
}

// synthesize returns the 16 kHz PCM of text from tts (signed HTTP once request).
func synthesize(t *testing.T, c *asetest.Client, text string) []byte {
	t.Helper()
	r := once(t, c, "tts", ttsFrame(3, text, nil))
	// The schema types the audio attributes: integers, as the engine reports them.
	if sr, bd := r.Attr("audio", "sample_rate"), r.Attr("audio", "bit_depth"); sr != "16000" || bd != "16" {
		t.Fatalf("tts audio sample_rate=%s bit_depth=%s, want 16000/16", sr, bd)
	}
	pcm := output(t, r, "audio")
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

// asrFrame is frame i of an asr session; the first (status 0) carries the parameters
// (a grammar when not empty) and the result descriptor.
func asrFrame(i, status int, audio []byte, grammar string) asetest.Frame {
	f := asetest.Frame{Status: status, Header: user, Seq: asetest.Int(i), Payload: map[string]asetest.Data{"audio": asetest.Audio(audio)}}
	if status == 0 {
		f.Accepts = map[string]map[string]any{"result": {"encoding": "utf8", "compress": "raw", "format": "json"}}
		if grammar != "" {
			f.Params = map[string]any{"grammar": grammar}
		}
	}
	return f
}

// recognize streams pcm to asr in 40 ms frames over a signed WebSocket and returns the
// partial texts (in arrival order) and the final text.
func recognize(t *testing.T, c *asetest.Client, pcm []byte, grammar string) (partials []string, final string) {
	t.Helper()
	sess := stream(t, c, "asr")
	results := readResults(sess)
	n := (len(pcm) + frameBytes - 1) / frameBytes
	for i := 0; i < n; i++ {
		chunk := pcm[i*frameBytes : min((i+1)*frameBytes, len(pcm))]
		st := 1
		if i == 0 {
			st = 0
		}
		send(t, sess, asrFrame(i, st, chunk, grammar))
	}
	send(t, sess, asrFrame(n, 2, nil, ""))
	gotFinal := false
	for r := range results {
		if r.Header.Code != 0 {
			t.Fatalf("asr error frame: %+v", r.Header)
		}
		if gotFinal {
			t.Fatalf("result after the final one: %+v", r.Header)
		}
		var res asrResult
		if err := json.Unmarshal(output(t, r, "result"), &res); err != nil {
			t.Fatalf("asr result %s: %v", r.Raw, err)
		}
		if r.StatusValue() == 2 {
			if !res.Final {
				t.Fatalf("status 2 result not final: %+v", res)
			}
			final, gotFinal = res.Text, true
			continue
		}
		if res.Final {
			t.Fatalf("final result with status %d", r.StatusValue())
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
	_, c := startSuite(t,
		loaderSpec{service: "tts", engine: "c", path: tts, async: true},
		loaderSpec{service: "asr", engine: "c", path: asr, config: map[string]string{"lm": "none"}},
	)
	grammar := commandGrammar()
	for i, sentence := range sentences {
		t.Run(fmt.Sprint("sentence-", i), func(t *testing.T) {
			pcm := synthesize(t, c, sentence)
			partials, final := recognize(t, c, pcm, grammar)
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
		want := synthesize(t, c, text)
		sess := stream(t, c, "tts")
		results := readResults(sess)
		send(t, sess, ttsFrame(0, text, asetest.Int(0)))
		send(t, sess, ttsFrame(2, "", asetest.Int(1)))
		var got []byte
		chunks, ended := 0, false
		for r := range results {
			if r.Header.Code != 0 {
				t.Fatalf("tts stream error: %+v", r.Header)
			}
			pcm := output(t, r, "audio")
			if len(pcm) > 0 {
				chunks++
			}
			got = append(got, pcm...)
			ended = r.StatusValue() == 2
		}
		t.Logf("stream: %d audio chunks, %d bytes (once: %d bytes)", chunks, len(got), len(want))
		if !ended || chunks < 2 {
			t.Fatalf("stream ended=%v with %d chunks, want several chunks then status 2", ended, chunks)
		}
		if d := math.Abs(float64(len(got)-len(want))) / float64(len(want)); d > 0.05 || len(got)%2 != 0 {
			t.Fatalf("stream audio %d bytes, once audio %d bytes", len(got), len(want))
		}
		// And it is still the sentence.
		if _, final := recognize(t, c, got, grammar); final != text {
			t.Fatalf("streamed audio recognised as %q, want %q", final, text)
		}
	})

	// The published schemas are enforced: out-of-range parameters get 10163.
	t.Run("schema-refusal", func(t *testing.T) {
		f := ttsFrame(3, "hello", nil)
		f.Params["speed"] = 1000
		ctx, cancel := contextTimeout()
		defer cancel()
		r, err := c.Once(ctx, "tts", f)
		if err != nil {
			t.Fatal(err)
		}
		if r.Header.Code != 10163 {
			t.Fatalf("tts speed 1000: HTTP %d, header %+v, want code 10163", r.HTTPStatus, r.Header)
		}
		sess := stream(t, c, "asr")
		bad := asrFrame(0, 0, make([]byte, frameBytes), "")
		bad.Params = map[string]any{"lm": "x"}
		send(t, sess, bad)
		resp, err := sess.Recv(10 * time.Second)
		if err != nil || resp.Header.Code != 10163 {
			t.Fatalf("asr with parameter lm: %+v %v, want code 10163", resp, err)
		}
	})
}

// TestASRLicence: a licence of N on asr holds exactly N concurrent recognitions; the
// N+1th gets 10110, and a slot freed by a finished session is usable again.
func TestASRLicence(t *testing.T) {
	asr := engineLib(t, "asr")
	const n = 2
	s, c := startSuite(t, loaderSpec{service: "asr", engine: "c", path: asr, licence: n, config: map[string]string{"lm": "none"}})
	grammar := commandGrammar()
	silence := make([]byte, frameBytes)
	var open []*asetest.Session
	var results []<-chan *asetest.Response
	for i := 0; i < n; i++ {
		sess := stream(t, c, "asr")
		results = append(results, readResults(sess))
		send(t, sess, asrFrame(0, 0, silence, grammar))
		open = append(open, sess)
	}
	l := s.Loaders[0]
	suitetest.WaitFor(t, 10*time.Second, func() bool { return gauge(t, l, "asf_loader_sessions_active") == n })

	extra := stream(t, c, "asr")
	extraResults := readResults(extra)
	send(t, extra, asrFrame(0, 0, silence, grammar))
	r, ok := <-extraResults
	if !ok || r.Header.Code != 10110 {
		t.Fatalf("session %d of a licence of %d: got %+v (ok=%v), want code 10110", n+1, n, r, ok)
	}
	t.Logf("session %d refused: %d %s", n+1, r.Header.Code, r.Header.Message)
	if got := gauge(t, l, "asf_loader_sessions_active"); got != n {
		t.Fatalf("sessions active = %v after the refusal, want %d", got, n)
	}

	// End the first session; its slot serves a new recognition.
	send(t, open[0], asrFrame(1, 2, nil, ""))
	for r := range results[0] {
		if r.Header.Code != 0 {
			t.Fatalf("ending session 0: %+v", r.Header)
		}
	}
	suitetest.WaitFor(t, 10*time.Second, func() bool { return gauge(t, l, "asf_loader_sessions_active") == n-1 })
	pcm := make([]byte, 10*frameBytes)
	if _, final := recognize(t, c, pcm, grammar); final != "" {
		t.Logf("silence recognised as %q", final)
	}
}
