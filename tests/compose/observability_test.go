package compose

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/testpoll"
)

// getJSON fetches url and decodes its JSON body into v.
func getJSON(url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %.200s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// scrapeTargets is Prometheus's /api/v1/targets answer (the active targets).
type scrapeTargets struct {
	Data struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
			ScrapeURL string            `json:"scrapeUrl"`
		} `json:"activeTargets"`
	} `json:"data"`
}

// targetsUp checks Prometheus's targets: want[job] targets of each job, every one up.
func targetsUp(base string, want map[string]int) error {
	var r scrapeTargets
	if err := getJSON(base+"/api/v1/targets?state=active", &r); err != nil {
		return err
	}
	got := map[string]int{}
	var down []string
	for _, tg := range r.Data.ActiveTargets {
		job := tg.Labels["job"]
		got[job]++
		if tg.Health != "up" {
			down = append(down, fmt.Sprintf("%s %s: %s %s", job, tg.ScrapeURL, tg.Health, tg.LastError))
		}
	}
	for job, n := range want {
		if got[job] != n {
			return fmt.Errorf("job %s has %d targets, want %d (all: %v)", job, got[job], n, got)
		}
	}
	if len(down) > 0 {
		sort.Strings(down)
		return fmt.Errorf("targets not up: %s", strings.Join(down, "; "))
	}
	return nil
}

// jaegerServices lists the services Jaeger holds spans of (/api/services).
func jaegerServices(base string) ([]string, error) {
	var r struct {
		Data []string `json:"data"`
	}
	if err := getJSON(base+"/api/services", &r); err != nil {
		return nil, err
	}
	sort.Strings(r.Data)
	return r.Data, nil
}

// checkObservability: Prometheus scrapes every service replica of the deployment and each
// is up; after the traffic so far Jaeger holds spans of every service of the request path.
func (e env) checkObservability(t *testing.T, loaders int) {
	prom, jaeger := os.Getenv("ASF_COMPOSE_PROMETHEUS_URL"), os.Getenv("ASF_COMPOSE_JAEGER_URL")
	if prom == "" || jaeger == "" {
		t.Skip("ASF_COMPOSE_PROMETHEUS_URL or ASF_COMPOSE_JAEGER_URL not set (scripts/compose-test.sh sets them)")
	}
	want := map[string]int{"polaris": 2, "lbclient": 2, "atom": 2, "webgate": len(e.containers(t, "webgate")),
		"loader": loaders + len(e.containers(t, "loader-demo-py")) + len(e.containers(t, "loader-demo-c"))}
	testpoll.CheckFor(t, 60*time.Second, 250*time.Millisecond, func() error { return targetsUp(prom, want) })
	t.Logf("Prometheus targets up: %v", want)

	// The alerting rules are loaded.
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name string `json:"name"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(prom+"/api/v1/rules?type=alert", &rules); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Name)
		}
	}
	for _, a := range []string{"ASFLoaderDown", "ASFLicenceSaturation", "ASFErrorRatio", "ASFPolarisUnreachable"} {
		if !slices.Contains(alerts, a) {
			t.Errorf("Prometheus has not loaded alert %s (loaded: %v)", a, alerts)
		}
	}

	// Spans of the once and stream requests above reached Jaeger from every hop.
	inPath := []string{"atom", "lbclient", "loader", "webgate"}
	var have []string
	testpoll.CheckFor(t, 30*time.Second, 250*time.Millisecond, func() error {
		s, err := jaegerServices(jaeger)
		if err != nil {
			return err
		}
		have = s
		for _, svc := range inPath {
			if !slices.Contains(s, svc) {
				// Traffic while waiting: the services export their spans in batches.
				_ = e.once("echo", "trace", e.creds)
				return fmt.Errorf("Jaeger /api/services: no spans of %s yet (services: %v)", svc, s)
			}
		}
		return nil
	})
	t.Logf("Jaeger holds spans of %v", have)

	// Exemplars: a latency bucket of a sampled request carries its trace id, and that trace
	// is in Jaeger (Prometheus scrapes OpenMetrics with exemplar storage on).
	var traceID string
	testpoll.CheckFor(t, 60*time.Second, 500*time.Millisecond, func() error {
		id, err := webgateExemplar(prom)
		if err != nil || id == "" {
			for range 10 { // sampled at 0.1: some of these carry exemplars
				_ = e.once("echo", "exemplar", e.creds)
			}
			if err == nil {
				err = errors.New("no exemplar on asf_webgate_request_seconds yet")
			}
			return err
		}
		traceID = id
		return nil
	})
	testpoll.CheckFor(t, 30*time.Second, 250*time.Millisecond, func() error {
		var tr struct {
			Data []struct {
				TraceID string `json:"traceID"`
			} `json:"data"`
		}
		if err := getJSON(jaeger+"/api/traces/"+traceID, &tr); err != nil {
			return err
		}
		if len(tr.Data) != 1 || tr.Data[0].TraceID != traceID {
			return fmt.Errorf("Jaeger has no trace %s yet", traceID)
		}
		return nil
	})
	t.Logf("exemplar trace %s of asf_webgate_request_seconds is in Jaeger", traceID)
}

// webgateExemplar returns the trace id of an exemplar of webgate's request latency from
// the last ten minutes ("" when there is none yet).
func webgateExemplar(prom string) (string, error) {
	var r struct {
		Data []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	now := time.Now()
	q := fmt.Sprintf("%s/api/v1/query_exemplars?query=asf_webgate_request_seconds_bucket&start=%d&end=%d",
		prom, now.Add(-10*time.Minute).Unix(), now.Unix())
	if err := getJSON(q, &r); err != nil {
		return "", err
	}
	for _, series := range r.Data {
		for _, ex := range series.Exemplars {
			if id := ex.Labels["trace_id"]; id != "" {
				return id, nil
			}
		}
	}
	return "", nil
}
