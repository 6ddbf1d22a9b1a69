// Package compose tests the docker-compose deployment (deploy/compose) from outside, as a
// client and an operator would: signed once and WebSocket requests through the front proxy
// and webgate, traffic spread over three echo loaders, two atoms and two lbclients, webgate
// scaled from one replica to two under load (proxy_test.go), and the chaos table
// (chaos_test.go): under steady once and stream load (tools/chaos's load and thresholds) a
// killed loader, a frozen loader, a killed atom, a killed lbclient, a killed webgate, a
// webgate restarted behind the proxy, a NATS restart and a stopped polaris replica, one
// after the other on the same stack.
//
// It runs only when ASF_COMPOSE_PROJECT names a running compose project (scripts/compose-test.sh
// brings it up with `--scale loader-echo=3` and sets the variables); otherwise it skips at once.
//
//	ASF_COMPOSE_PROJECT  compose project name (containers <project>_<service>_<n>)
//	ASF_COMPOSE_URL      the proxy's base URL (default http://127.0.0.1:8889)
//	ASF_COMPOSE_CMD      the compose command of the project, split on spaces
//	                     (docker-compose -f deploy/compose/docker-compose.yml -p <project>):
//	                     the demo app's keys are read as a user does, with
//	                     `<cmd> run --rm -T secrets show` (client.env), and webgate is
//	                     scaled with `<cmd> up -d --no-recreate --scale webgate=2 webgate`
//	ASF_COMPOSE_ENV      instead, a client.env file with ASF_APP_ID, ASF_API_KEY, ASF_API_SECRET
//	ASF_CHAOS_OUT        when set, the chaos table is also written to this file (Markdown)
//	ASF_COMPOSE_PROMETHEUS_URL, ASF_COMPOSE_JAEGER_URL
//	                     the published Prometheus and Jaeger UI/query base URLs: every
//	                     service replica is a target that is up, the alerting rules are
//	                     loaded, and Jaeger lists spans of every hop after the traffic
package compose

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type creds struct{ appID, key, secret string }

type env struct {
	project string
	base    string
	creds   creds
	cmd     []string // the project's compose command
}

func setup(t *testing.T) env {
	t.Helper()
	p := os.Getenv("ASF_COMPOSE_PROJECT")
	if p == "" {
		t.Skip("ASF_COMPOSE_PROJECT not set: compose tests run through scripts/compose-test.sh")
	}
	e := env{project: p, base: os.Getenv("ASF_COMPOSE_URL"), cmd: strings.Fields(os.Getenv("ASF_COMPOSE_CMD"))}
	if e.base == "" {
		e.base = "http://127.0.0.1:8889"
	}
	clientEnv, err := readClientEnv()
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(clientEnv))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch k {
		case "ASF_APP_ID":
			e.creds.appID = v
		case "ASF_API_KEY":
			e.creds.key = v
		case "ASF_API_SECRET":
			e.creds.secret = v
		}
	}
	if e.creds.key == "" || e.creds.secret == "" {
		t.Fatal("client.env lacks ASF_API_KEY or ASF_API_SECRET")
	}
	return e
}

// readClientEnv returns the demo app's client.env: the file ASF_COMPOSE_ENV names, else
// the output of the documented `run --rm secrets show`.
func readClientEnv() ([]byte, error) {
	if f := os.Getenv("ASF_COMPOSE_ENV"); f != "" {
		return os.ReadFile(f)
	}
	cmdline := strings.Fields(os.Getenv("ASF_COMPOSE_CMD"))
	if len(cmdline) == 0 {
		return nil, fmt.Errorf("set ASF_COMPOSE_CMD (the project's compose command) or ASF_COMPOSE_ENV")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, cmdline[0], append(cmdline[1:], "run", "--rm", "-T", "secrets", "show")...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s run --rm -T secrets show: %v: %s", strings.Join(cmdline, " "), err, errb.String())
	}
	return out.Bytes(), nil
}

// signURL adds the ASE URL-parameter HMAC authorization (authorization, date, host) for
// method to rawURL.
func signURL(rawURL, method string, c creds) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	date := time.Now().UTC().Format(http.TimeFormat)
	origin := "host: " + u.Host + "\ndate: " + date + "\n" + method + " " + u.EscapedPath() + " HTTP/1.1"
	mac := hmac.New(sha256.New, []byte(c.secret))
	mac.Write([]byte(origin))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	auth := fmt.Sprintf(`api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"`, c.key, sig)
	q := u.Query()
	q.Set("authorization", base64.StdEncoding.EncodeToString([]byte(auth)))
	q.Set("date", date)
	q.Set("host", u.Host)
	u.RawQuery = q.Encode()
	return u.String()
}

type response struct {
	Header struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		SID     string `json:"sid"`
		Status  int    `json:"status"`
	} `json:"header"`
	Payload map[string]map[string]any `json:"payload"`
}

var client = &http.Client{Timeout: 15 * time.Second}

// once sends a signed once request to capability and checks the echoed text.
func (e env) once(capability, text string, c creds) error {
	body := fmt.Sprintf(`{"header":{"app_id":%q,"uid":"compose","status":3},"parameter":{%q:{}},`+
		`"payload":{"input":{"encoding":"utf8","status":3,"text":%q}}}`,
		c.appID, capability, base64.StdEncoding.EncodeToString([]byte(text)))
	u := signURL(e.base+"/v1/private/"+capability, http.MethodPost, c)
	resp, err := client.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("HTTP %d, body %q: %w", resp.StatusCode, b, err)
	}
	if resp.StatusCode != http.StatusOK || r.Header.Code != 0 {
		return fmt.Errorf("HTTP %d, code %d: %s", resp.StatusCode, r.Header.Code, r.Header.Message)
	}
	got, _ := r.Payload["input"]["text"].(string)
	if dec, _ := base64.StdEncoding.DecodeString(got); string(dec) != text {
		return fmt.Errorf("echo %q, want %q", dec, text)
	}
	return nil
}

// stream runs one signed WebSocket session of three frames and returns the result statuses.
func (e env) stream(capability string) ([]int, error) {
	ws := "ws" + strings.TrimPrefix(signURL(e.base+"/v1/private/"+capability, http.MethodGet, e.creds), "http")
	c, resp, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			return nil, fmt.Errorf("dial: %v: HTTP %d %s", err, resp.StatusCode, b)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	for i, st := range []int{0, 1, 2} {
		frame := map[string]any{
			"header":  map[string]any{"app_id": e.creds.appID, "status": st},
			"payload": map[string]any{"input": map[string]any{"encoding": "utf8", "status": st, "seq": i, "text": base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("frame-%d", i)))}},
		}
		if i == 0 {
			frame["parameter"] = map[string]any{capability: map[string]any{}}
		}
		if err := c.WriteJSON(frame); err != nil {
			return nil, err
		}
	}
	var statuses []int
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var r response
		if err := c.ReadJSON(&r); err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) && len(statuses) > 0 {
				return statuses, nil
			}
			return statuses, fmt.Errorf("read after %v: %w", statuses, err)
		}
		if r.Header.Code != 0 {
			return statuses, fmt.Errorf("error frame: code %d %s", r.Header.Code, r.Header.Message)
		}
		txt, _ := r.Payload["input"]["text"].(string)
		if dec, _ := base64.StdEncoding.DecodeString(txt); string(dec) != fmt.Sprintf("frame-%d", len(statuses)) {
			return statuses, fmt.Errorf("result %d = %q", len(statuses), dec)
		}
		statuses = append(statuses, r.Header.Status)
		if r.Header.Status == 2 {
			return statuses, nil
		}
	}
}

// runCmd runs a command (up to 3 minutes) and returns its stdout and stderr together.
func runCmd(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// docker runs the docker CLI and returns its trimmed stdout.
func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// dockerOutput runs the docker CLI and returns its stdout and stderr together (docker
// logs replays a container's stderr on its own).
func dockerOutput(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// containers lists the running containers of service, by name.
func (e env) containers(t *testing.T, service string) []string {
	t.Helper()
	out, err := docker("ps", "--filter", "label=com.docker.compose.project="+e.project,
		"--filter", "label=com.docker.compose.service="+service, "--format", "{{.Names}}")
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Fields(out)
	sort.Strings(names)
	return names
}

// get fetches an admin URL inside a container with its asfbox helper.
func get(container, url string) (string, error) {
	return docker("exec", container, "/usr/local/bin/asfbox", "probe", url)
}

// counter reads one counter (summed over its label sets) from a container's /metrics.
func counter(t *testing.T, container, port, name string) float64 {
	t.Helper()
	v, err := counterValue(container, port, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// counterValue is counter without a test: 0 when the counter has no sample yet.
func counterValue(container, port, name string) (float64, error) {
	body, err := get(container, "http://127.0.0.1:"+port+"/metrics")
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, nil
}

// inRotation returns the addresses of service's loaders in an lbclient's rotation.
func inRotation(container, service string) (map[string]bool, error) {
	body, err := get(container, "http://127.0.0.1:9990/v1/view")
	if err != nil {
		return nil, err
	}
	var v struct {
		Services []struct {
			Service string `json:"service"`
			Loaders []struct {
				Addr       string `json:"addr"`
				InRotation bool   `json:"in_rotation"`
			} `json:"loaders"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	out := map[string]bool{}
	for _, s := range v.Services {
		if s.Service != service {
			continue
		}
		for _, l := range s.Loaders {
			if l.InRotation {
				out[l.Addr] = true
			}
		}
	}
	return out, nil
}

// ip is a container's address on the compose network.
func ip(t *testing.T, container string) string {
	t.Helper()
	out, err := docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)[0]
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leftRotation polls lb's view until addr is out of its echo rotation and returns the
// interval in which that happened, measured from since: after lo (the start of the last
// poll that still showed addr) and before hi (the answer that no longer did).
func leftRotation(lb, addr string, since time.Time, limit time.Duration) (lo, hi time.Duration, err error) {
	for time.Since(since) < limit {
		start := time.Since(since)
		rot, err := inRotation(lb, "echo")
		if err == nil && !rot[addr] {
			return lo, time.Since(since), nil
		}
		lo = start
		time.Sleep(50 * time.Millisecond)
	}
	return lo, 0, fmt.Errorf("%s still routes to %s after %s", lb, addr, limit)
}

// TestCompose runs the deployment scenario in order; each step depends on the previous one.
func TestCompose(t *testing.T) {
	e := setup(t)
	loaders := e.containers(t, "loader-echo")
	if len(loaders) != 3 {
		t.Fatalf("loader-echo containers %v, want 3 (up --scale loader-echo=3)", loaders)
	}
	lbs := e.lbclients(t)
	atoms := append(e.containers(t, "atom-1"), e.containers(t, "atom-2")...)
	polarises := e.containers(t, "polaris")
	if len(lbs) != 2 || len(atoms) != 2 || len(polarises) != 2 {
		t.Fatalf("lbclient %v, atom %v, polaris %v: want 2 of each", lbs, atoms, polarises)
	}

	t.Run("signed once", func(t *testing.T) {
		waitFor(t, 60*time.Second, "a first successful once request", func() bool { return e.once("echo", "warm-up", e.creds) == nil })
		for _, capability := range []string{"echo", "python-echo", "c-echo"} {
			if err := e.once(capability, "hello "+capability, e.creds); err != nil {
				t.Fatalf("%s: %v", capability, err)
			}
		}
		bad := e.creds
		bad.secret = "not-the-secret"
		if err := e.once("echo", "x", bad); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("wrong secret: %v, want HTTP 401", err)
		}
	})

	t.Run("signed stream", func(t *testing.T) {
		for _, capability := range []string{"echo", "python-echo", "c-echo"} {
			st, err := e.stream(capability)
			if err != nil || fmt.Sprint(st) != "[0 1 2]" {
				t.Fatalf("%s: statuses %v, %v", capability, st, err)
			}
		}
	})

	t.Run("prometheus and jaeger", func(t *testing.T) { e.checkObservability(t, len(loaders)) })

	t.Run("spread over three loaders", func(t *testing.T) {
		// Every loader, the one scaled in last included, is in rotation without restarts.
		addrs := map[string]string{}
		for _, c := range loaders {
			addrs[c] = ip(t, c) + ":5090"
		}
		waitFor(t, 30*time.Second, "all three echo loaders in every lbclient's rotation", func() bool {
			for _, lb := range lbs {
				rot, err := inRotation(lb, "echo")
				if err != nil {
					return false
				}
				for _, a := range addrs {
					if !rot[a] {
						return false
					}
				}
			}
			return true
		})
		before := map[string]float64{}
		for _, c := range loaders {
			before[c] = counter(t, c, "5091", "asf_loader_once_requests_total")
		}
		const n = 90
		for i := 0; i < n; i++ {
			if err := e.once("echo", fmt.Sprint("spread-", i), e.creds); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		total := 0.0
		for _, c := range loaders {
			d := counter(t, c, "5091", "asf_loader_once_requests_total") - before[c]
			total += d
			t.Logf("%s served %v of %d", c, d, n)
			if d < n/10 {
				t.Errorf("%s served %v of %d requests, want ≥ %d", c, d, n, n/10)
			}
		}
		if total < n {
			t.Errorf("loaders counted %v requests, want %d", total, n)
		}
	})

	t.Run("spread over two atoms and two lbclients", func(t *testing.T) {
		before := map[string]float64{}
		for _, c := range atoms {
			before[c] = counter(t, c, "9987", "asf_atom_requests_total")
		}
		for _, c := range lbs {
			before[c] = counter(t, c, "9990", "asf_lbclient_picks_total")
		}
		// atom opens its pick streams as soon as one lbclient connection is ready, and
		// each stream retires after 30 s and reopens on the next ready replica: within one
		// retirement every lbclient answers picks.
		started := time.Now()
		waitFor(t, 45*time.Second, "picks answered by every lbclient", func() bool {
			for i := 0; i < 10; i++ {
				if err := e.once("echo", fmt.Sprint("streams-", i), e.creds); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			for _, c := range lbs {
				if counter(t, c, "9990", "asf_lbclient_picks_total") == before[c] {
					return false
				}
			}
			return true
		})
		t.Logf("every lbclient answered picks %s into the test", time.Since(started).Round(100*time.Millisecond))
		for _, c := range append(atoms, lbs...) {
			port, name := "9987", "asf_atom_requests_total"
			if strings.Contains(c, "lbclient") {
				port, name = "9990", "asf_lbclient_picks_total"
			}
			before[c] = counter(t, c, port, name)
		}
		const n = 60
		for i := 0; i < n; i++ {
			if err := e.once("echo", fmt.Sprint("replicas-", i), e.creds); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		// webgate sends each call to the next atom; atom each pick to the next of its pick
		// streams, which are spread over the lbclients.
		for _, c := range atoms {
			d := counter(t, c, "9987", "asf_atom_requests_total") - before[c]
			t.Logf("%s served %v of %d", c, d, n)
			if d < n/4 {
				t.Errorf("%s served %v of %d requests, want ≥ %d", c, d, n, n/4)
			}
		}
		for _, c := range lbs {
			d := counter(t, c, "9990", "asf_lbclient_picks_total") - before[c]
			// Picks follow the pick streams, and how many of atom's six each lbclient
			// holds varies (1 of 6 at the least): each must answer some.
			t.Logf("%s answered %v picks", c, d)
			if d < n/12 {
				t.Errorf("%s answered %v picks for %d requests, want ≥ %d", c, d, n, n/12)
			}
		}
	})

	t.Run("webgate scaled to two behind the proxy under load", e.scaleWebgate)

	t.Run("chaos", e.runChaos)
}
