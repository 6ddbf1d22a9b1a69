// Package monitoring checks the monitoring files shipped in deploy/: the Grafana dashboards
// (deploy/grafana/*.json), the Prometheus alerting rules (deploy/prometheus/alerts.yml, with
// promtool) and compose's Prometheus config. Every metric they name must be one the
// services export, so a renamed metric cannot leave a dashboard or an alert silently empty.
package monitoring

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// services are the five services; libs/grpcx names its metrics asf_<service>_grpc_... .
var services = []string{"polaris", "lbclient", "atom", "loader", "webgate"}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.work above the test")
		dir = parent
	}
}

var (
	// literalName is a metric name written out in Go source.
	literalName = regexp.MustCompile(`"(asf_[a-z0-9_]+)"`)
	// perServiceName is a name built from the service's name: "asf_" + service + "_suffix".
	perServiceName = regexp.MustCompile(`"asf_" \+ \w+ \+ "(_[a-z0-9_]+)"`)
	// usedName is a metric name in a PromQL expression or a description.
	usedName = regexp.MustCompile(`\basf_[a-z0-9_]+\b`)
)

// exportedMetrics are the metric names the services' and libraries' code registers.
func exportedMetrics(t *testing.T, root string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range []string{"services", "libs"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range literalName.FindAllSubmatch(b, -1) {
				names[string(m[1])] = true
			}
			for _, m := range perServiceName.FindAllSubmatch(b, -1) {
				for _, s := range services {
					names["asf_"+s+string(m[1])] = true
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	return names
}

// known reports whether name is an exported metric or one of a histogram's series.
func known(exported map[string]bool, name string) bool {
	if exported[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
			return true
		}
	}
	return false
}

// monitoringFiles are the files whose metric names are checked.
func monitoringFiles(t *testing.T, root string) []string {
	t.Helper()
	dashboards, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, dashboards, "no dashboards in deploy/grafana")
	return append(dashboards,
		filepath.Join(root, "deploy", "prometheus", "alerts.yml"),
		filepath.Join(root, "deploy", "prometheus", "compose.yml"))
}

// TestMetricNamesExist: every asf_* metric a dashboard, an alert or the scrape config
// names is registered somewhere in services/ or libs/.
func TestMetricNamesExist(t *testing.T) {
	root := repoRoot(t)
	exported := exportedMetrics(t, root)
	require.NotEmpty(t, exported)
	require.True(t, exported["asf_loader_licence_utilisation_ratio"], "the scan finds the loader's metrics")
	require.True(t, exported["asf_atom_grpc_calls_total"], "the scan expands grpcx's per-service names")
	used := 0
	for _, f := range monitoringFiles(t, root) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var unknown []string
		for _, name := range usedName.FindAllString(string(b), -1) {
			used++
			if !known(exported, name) {
				unknown = append(unknown, name)
			}
		}
		sort.Strings(unknown)
		require.Empty(t, unknown, "%s names metrics no service exports", f)
	}
	require.Greater(t, used, 50, "the files name the services' metrics")
}

// TestDashboards: each dashboard is Grafana JSON with a unique uid, a Prometheus
// datasource variable, and panels that each query something.
func TestDashboards(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "*.json"))
	require.NoError(t, err)
	var names []string
	uids := map[string]string{}
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var d struct {
			UID        string `json:"uid"`
			Title      string `json:"title"`
			Templating struct {
				List []struct {
					Name, Type string
				} `json:"list"`
			} `json:"templating"`
			Panels []struct {
				ID      int    `json:"id"`
				Type    string `json:"type"`
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(b, &d), f)
		require.NotEmpty(t, d.UID, f)
		require.NotEmpty(t, d.Title, f)
		require.Empty(t, uids[d.UID], "%s: uid %s also in %s", f, d.UID, uids[d.UID])
		uids[d.UID] = f
		require.NotEmpty(t, d.Templating.List, f)
		require.Equal(t, "datasource", d.Templating.List[0].Type, "%s: the first variable picks the Prometheus datasource", f)
		ids := map[int]bool{}
		queries := 0
		for _, p := range d.Panels {
			require.False(t, ids[p.ID], "%s: panel id %d twice", f, p.ID)
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			require.NotEmpty(t, p.Targets, "%s: panel %q queries nothing", f, p.Title)
			for _, q := range p.Targets {
				require.NotEmpty(t, strings.TrimSpace(q.Expr), "%s: panel %q", f, p.Title)
				queries++
			}
		}
		require.Greater(t, queries, 5, f)
	}
	sort.Strings(names)
	require.Equal(t, []string{"atom", "lbclient", "loader", "polaris", "suite", "webgate"}, names,
		"one dashboard per tier and one for the whole suite")
}

// promtool returns bin/promtool (scripts/prometheus.sh, make promtool); without it the test
// is skipped, or fails when ASF_PROMTOOL_REQUIRED=1 (CI).
func promtool(t *testing.T, root string) string {
	t.Helper()
	p := filepath.Join(root, "bin", "promtool")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("ASF_PROMTOOL_REQUIRED") == "1" {
			t.Fatalf("%s missing (ASF_PROMTOOL_REQUIRED=1): build it with make promtool", p)
		}
		t.Skipf("%s missing: build it with make promtool", p)
	}
	return p
}

// TestAlertRules: promtool accepts the rules, their unit tests (alerts_test.yml: each alert
// fires on the series it is about, and not before its `for`) pass, and compose's
// Prometheus config (which loads the rules) is valid.
func TestAlertRules(t *testing.T) {
	root := repoRoot(t)
	bin := promtool(t, root)
	dir := filepath.Join(root, "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "--syntax-only", "compose.yml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		t.Logf("promtool %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
}

// TestDashboardQueriesParse: promtool parses every dashboard query, with Grafana's
// variables replaced ($__rate_interval by 1m, the filter variables by .*), as a recording
// rule of a throw-away rules file.
func TestDashboardQueriesParse(t *testing.T) {
	root := repoRoot(t)
	bin := promtool(t, root)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "*.json"))
	require.NoError(t, err)
	vars := strings.NewReplacer("$__rate_interval", "1m", "$capability", ".*", "$service", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var d struct {
			Panels []struct {
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(b, &d))
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				expr, err := json.Marshal(vars.Replace(q.Expr)) // a JSON string is a YAML string
				require.NoError(t, err)
				n++
				rules.WriteString("      - record: dashboard_query_" + strconv.Itoa(n) + "\n        expr: " + string(expr) + "\n")
			}
		}
	}
	path := filepath.Join(t.TempDir(), "dashboards.yml")
	require.NoError(t, os.WriteFile(path, []byte(rules.String()), 0o644))
	out, err := exec.Command(bin, "check", "rules", path).CombinedOutput()
	require.NoError(t, err, "promtool check rules on the dashboards' queries:\n%s", out)
	require.Contains(t, string(out), strconv.Itoa(n)+" rules found")
}
