package engines

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/athenaserving/asf/tests/asetest"
)

// holdoutSet is what `wrapper.py --holdout` prints: the held-out images and what the
// model trained in-process makes of them.
type holdoutSet struct {
	Accuracy          float64 `json:"accuracy"`
	AccuracyQuantised float64 `json:"accuracy_quantised"`
	Images            []struct {
		Pixels             []int `json:"pixels"`
		Label              int   `json:"label"`
		Predicted          int   `json:"predicted"`
		PredictedQuantised int   `json:"predicted_quantised"`
	} `json:"images"`
}

func loadHoldout(t *testing.T, wrapper string) holdoutSet {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", wrapper, "--holdout")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(repoRoot(t), "sdk", "python"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wrapper.py --holdout: %v", err)
	}
	var h holdoutSet
	if err := json.Unmarshal(out, &h); err != nil {
		t.Fatalf("holdout JSON: %v", err)
	}
	if len(h.Images) < 100 {
		t.Fatalf("holdout has %d images", len(h.Images))
	}
	return h
}

type digitsResult struct {
	Label         int       `json:"label"`
	Probabilities []float64 `json:"probabilities"`
}

// digitsFrame is a digits once request for an image of the given encoding (png or raw)
// whose largest grey level is scale.
func digitsFrame(img []byte, encoding string, scale int) asetest.Frame {
	return asetest.Frame{Status: 3, Header: user,
		Accepts: map[string]map[string]any{"result": {"encoding": "utf8", "compress": "raw", "format": "json"}},
		Payload: map[string]asetest.Data{"image": {Type: "image", Bytes: img, Attrs: map[string]any{"encoding": encoding, "scale": scale}}}}
}

// classify sends one digits request; safe in goroutines.
func classify(c *asetest.Client, f asetest.Frame) (digitsResult, error) {
	var res digitsResult
	r, err := tryOnce(c, "digits", f)
	if err != nil {
		return res, err
	}
	raw, err := r.Bytes("result")
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("digits result %.200s: %w", raw, err)
	}
	return res, nil
}

// pngOf encodes a 0..16 row as the 8×8 grey PNG an image file would hold (0..255).
func pngOf(t *testing.T, pixels []int) []byte {
	t.Helper()
	g := image.NewGray(image.Rect(0, 0, 8, 8))
	for i, v := range pixels {
		g.Pix[i] = uint8(math.Min(255, math.RoundToEven(float64(v)*255/16)))
	}
	var b bytes.Buffer
	if err := png.Encode(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDigitsHoldoutThroughSuite classifies the data set's held-out images through
// webgate (signed HTTP) and gets exactly the model's in-process predictions, so the same
// accuracy: raw 0..16 rows (scale 16) and their 0..255 PNG files.
func TestDigitsHoldoutThroughSuite(t *testing.T) {
	wrapper := requireDigits(t)
	h := loadHoldout(t, wrapper)
	_, c := startSuite(t, loaderSpec{service: "digits", engine: "python", path: wrapper, workers: 2})

	// The published schema is enforced: a scale of 0 gets 10163.
	ctx, cancel := contextTimeout()
	r, err := c.Once(ctx, "digits", digitsFrame(make([]byte, 64), "raw", 0))
	cancel()
	if err != nil || r.Header.Code != 10163 {
		t.Fatalf("digits scale 0: %+v %v, want code 10163", r, err)
	}
	pngs := make([][]byte, len(h.Images))
	for i := range h.Images {
		pngs[i] = pngOf(t, h.Images[i].Pixels)
	}

	type job struct {
		i   int
		png bool
	}
	jobs := make(chan job)
	var mu sync.Mutex
	rawOK, pngOK, pngN, mismatches := 0, 0, 0, 0
	var errs []error
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				img := h.Images[j.i]
				var f asetest.Frame
				want := img.Predicted
				if j.png {
					f, want = digitsFrame(pngs[j.i], "png", 255), img.PredictedQuantised
				} else {
					raw := make([]byte, 64)
					for k, v := range img.Pixels {
						raw[k] = byte(v)
					}
					f = digitsFrame(raw, "raw", 16)
				}
				res, err := classify(c, f)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				sum := 0.0
				for _, p := range res.Probabilities {
					sum += p
				}
				mu.Lock()
				if len(res.Probabilities) != 10 || math.Abs(sum-1) > 1e-3 {
					t.Errorf("image %d: probabilities %v", j.i, res.Probabilities)
				}
				if res.Label != want {
					mismatches++
				}
				switch {
				case j.png:
					pngN++
					if res.Label == img.Label {
						pngOK++
					}
				case res.Label == img.Label:
					rawOK++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range h.Images {
		jobs <- job{i: i}
		if i%5 == 0 {
			jobs <- job{i: i, png: true}
		}
	}
	close(jobs)
	wg.Wait()

	if len(errs) > 0 {
		t.Fatalf("%d requests failed, first: %v", len(errs), errs[0])
	}
	n := len(h.Images)
	rawAcc := float64(rawOK) / float64(n)
	t.Logf("held-out images: %d; accuracy in-process %.4f, through the suite %.4f (raw); PNG subset %d images %.4f",
		n, h.Accuracy, rawAcc, pngN, float64(pngOK)/float64(pngN))
	if mismatches != 0 {
		t.Fatalf("%d predictions differ from the in-process model's", mismatches)
	}
	if math.Abs(rawAcc-h.Accuracy) > 1e-9 {
		t.Fatalf("accuracy through the suite %.4f, in-process %.4f", rawAcc, h.Accuracy)
	}
	if h.Accuracy < 0.9 {
		t.Fatalf("in-process accuracy %.4f is implausibly low", h.Accuracy)
	}
}
