// Package test checks the Helm charts of deploy/helm: `helm lint --strict` and
// `helm template` with default and non-default values, every rendered manifest decoded
// strictly (unknown fields are errors) into its Kubernetes API type, and the properties
// the charts promise (probes, non-root, grace period over drain time, HPA, PDB, no
// credentials in manifests).
//
// The helm binary is $HELM, else bin/helm at the repository root (deploy/helm/test/run.sh
// builds it from its Go module).
package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

var services = []string{"polaris", "lbclient", "atom", "webgate", "loader"}

func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	p, _ := filepath.Abs("../../../bin/helm")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no helm: set HELM or run deploy/helm/test/run.sh (builds bin/helm): %v", err)
	}
	return p
}

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(helmBin(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// object is one decoded manifest.
type object struct {
	kind, name string
	obj        any
}

// decodeStrict decodes every document of a rendered chart into its API type, refusing
// unknown fields and unknown kinds.
func decodeStrict(t *testing.T, rendered string) []object {
	t.Helper()
	var out []object
	for _, doc := range strings.Split(rendered, "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("manifest does not parse: %v\n%s", err, doc)
		}
		var obj any
		switch meta.APIVersion + "/" + meta.Kind {
		case "apps/v1/Deployment":
			obj = &appsv1.Deployment{}
		case "apps/v1/StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1/Secret":
			obj = &corev1.Secret{}
		case "batch/v1/Job":
			obj = &batchv1.Job{}
		case "autoscaling/v2/HorizontalPodAutoscaler":
			obj = &autoscalingv2.HorizontalPodAutoscaler{}
		case "policy/v1/PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			t.Fatalf("unexpected manifest %s %s", meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s %s does not decode strictly: %v\n%s", meta.Kind, meta.Metadata.Name, err, doc)
		}
		out = append(out, object{meta.Kind, meta.Metadata.Name, obj})
	}
	if len(out) == 0 {
		t.Fatal("chart rendered nothing")
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func byKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// checkPod asserts the pod properties every service Deployment must have.
func checkPod(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod does not require a non-root user", name)
	}
	for _, c := range spec.Containers {
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s/%s: readiness probe is not GET /readyz on the admin port", name, c.Name)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s/%s: liveness probe is not GET /healthz", name, c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: no CPU request or memory limit", name, c.Name)
		}
		for _, e := range c.Env {
			low := strings.ToLower(e.Name)
			if (strings.Contains(low, "token") || strings.Contains(low, "secret") || strings.Contains(low, "demo_app")) && e.Value != "" {
				t.Errorf("%s/%s: %s carries a literal value; credentials must come from secrets", name, c.Name, e.Name)
			}
		}
		checkStop(t, name, spec, c)
	}
}

// shutdownBound is the bound every service puts on its whole shutdown after SIGTERM.
const shutdownBound = 15

// checkStop asserts the order of a pod's stop: a preStop sleep longer than the session
// timeout the container is given (ASF_*_SESSION_TIMEOUT), then the service's shutdown
// (ASF_*_DRAIN_TIMEOUT, at least the shutdown bound), all within the grace period.
func checkStop(t *testing.T, name string, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Errorf("%s/%s: no preStop sleep", name, c.Name)
		return
	}
	preStop := c.Lifecycle.PreStop.Sleep.Seconds
	stop := int64(shutdownBound)
	for _, e := range c.Env {
		var secs int64
		switch {
		case strings.HasSuffix(e.Name, "_DRAIN_TIMEOUT"):
			if _, err := fmt.Sscanf(e.Value, "%ds", &secs); err != nil {
				t.Errorf("%s: drain timeout %q", name, e.Value)
			}
			stop = max(stop, secs)
		case strings.HasSuffix(e.Name, "_SESSION_TIMEOUT"):
			if _, err := fmt.Sscanf(e.Value, "%ds", &secs); err != nil {
				t.Errorf("%s: session timeout %q", name, e.Value)
			}
			if preStop <= secs {
				t.Errorf("%s: preStop sleep %ds not longer than the session timeout %ds", name, preStop, secs)
			}
		}
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= preStop+stop {
		t.Errorf("%s: grace period %v not longer than preStop %ds + shutdown %ds", name, g, preStop, stop)
	}
}

// checkRollout asserts a rolling update that never has fewer ready pods than wanted: new
// pods first (maxSurge at least one), none taken down before (maxUnavailable 0).
func checkRollout(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	s := d.Spec.Strategy
	if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil {
		t.Fatalf("%s: strategy %+v, want RollingUpdate", d.Name, s)
	}
	u, sg := s.RollingUpdate.MaxUnavailable, s.RollingUpdate.MaxSurge
	if u == nil || u.String() != "0" {
		t.Errorf("%s: maxUnavailable %v, want 0", d.Name, u)
	}
	if sg == nil || sg.String() == "0" || sg.String() == "0%" {
		t.Errorf("%s: maxSurge %v, want at least one pod", d.Name, sg)
	}
}

// adapterAPIs makes helm template render as for a cluster with a metrics adapter.
var adapterAPIs = []string{"--api-versions", "custom.metrics.k8s.io/v1beta1", "--api-versions", "external.metrics.k8s.io/v1beta1"}

func TestServiceCharts(t *testing.T) {
	for _, svc := range services {
		for _, values := range []string{"", "testdata/nondefault.yaml"} {
			t.Run(svc+"/"+map[bool]string{true: "default", false: "nondefault"}[values == ""], func(t *testing.T) {
				args := []string{filepath.Join("..", svc)}
				if values != "" {
					args = append(args, "-f", values)
				}
				if _, err := helm(t, append([]string{"lint", "--strict"}, args...)...); err != nil {
					t.Fatal(err)
				}
				out, err := helm(t, append(append([]string{"template", "rel"}, args...), adapterAPIs...)...)
				if err != nil {
					t.Fatal(err)
				}
				objs := decodeStrict(t, out)
				deps := byKind(objs, "Deployment")
				if len(deps) != 1 || len(byKind(objs, "Service")) != 1 {
					t.Fatalf("want one Deployment and one Service, got %d and %d", len(deps), len(byKind(objs, "Service")))
				}
				d := deps[0].obj.(*appsv1.Deployment)
				checkPod(t, d.Name, d.Spec.Template.Spec)
				checkRollout(t, d)
				checkNATSCredentials(t, svc, "rel-"+svc+"-nats", d)
				// The one Secret a chart may render is polaris's generated admin token
				// (adminToken.generate without existingSecret): random, never from values.
				for _, o := range byKind(objs, "Secret") {
					sec := o.obj.(*corev1.Secret)
					if svc != "polaris" || values != "" || sec.Name != "rel-polaris-admin-token" || len(sec.Data["token"]) != 48 {
						t.Errorf("a chart renders the Secret %s: credentials must come from existing secrets", sec.Name)
					}
				}
				if len(byKind(objs, "PodDisruptionBudget")) != 1 {
					t.Error("no PodDisruptionBudget")
				}
				hpas := byKind(objs, "HorizontalPodAutoscaler")
				if values == "" {
					if len(hpas) != 0 || d.Spec.Replicas == nil {
						t.Error("default values: want fixed replicas and no HPA")
					}
					return
				}
				if len(hpas) != 1 || d.Spec.Replicas != nil {
					t.Fatalf("autoscaling on: want one HPA and no fixed replicas (HPAs %d)", len(hpas))
				}
				if img := d.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, "registry.example.com/asf/asf/") || !strings.HasSuffix(img, ":1.2.3") {
					t.Errorf("image %q ignores global registry/tag", img)
				}
				h := hpas[0].obj.(*autoscalingv2.HorizontalPodAutoscaler)
				kinds := map[autoscalingv2.MetricSourceType]bool{}
				for _, m := range h.Spec.Metrics {
					kinds[m.Type] = true
				}
				if !kinds[autoscalingv2.ResourceMetricSourceType] {
					t.Error("HPA does not scale on CPU")
				}
				if svc == "loader" && (!kinds[autoscalingv2.PodsMetricSourceType] || !kinds[autoscalingv2.ExternalMetricSourceType]) {
					t.Error("loader HPA does not scale on licence utilisation and queue wait")
				}
				if svc == "polaris" {
					if len(byKind(objs, "Job")) != 1 || len(byKind(objs, "ConfigMap")) != 1 {
						t.Error("polaris: want the init Job and its ConfigMap")
					}
				}
			})
		}
	}
}

// TestStopOrderRefused: values whose stop does not fit are refused at rendering: a grace
// period not longer than preStop + drain, or a preStop wait not longer than the sessions.
func TestStopOrderRefused(t *testing.T) {
	for _, c := range []struct {
		chart string
		set   []string
		want  string
	}{
		{"loader", []string{"drain.seconds=30", "drain.preStopSeconds=190", "terminationGracePeriodSeconds=220"},
			"terminationGracePeriodSeconds (220) must be longer than drain.preStopSeconds + max(drain.seconds, drain.shutdownSeconds) (220)"},
		{"polaris", []string{"drain.preStopSeconds=5", "terminationGracePeriodSeconds=20"},
			"must be longer than drain.preStopSeconds + max(drain.seconds, drain.shutdownSeconds) (20)"},
		{"webgate", []string{"drain.sessionTimeoutSeconds=300", "drain.preStopSeconds=190"},
			"drain.preStopSeconds (190) must be longer than drain.sessionTimeoutSeconds (300)"},
		{"atom", []string{"drain.preStopSeconds=0"},
			"drain.preStopSeconds (0) must be longer than drain.sessionTimeoutSeconds (180)"},
	} {
		args := []string{"template", "rel", "../" + c.chart}
		for _, s := range c.set {
			args = append(args, "--set", s)
		}
		if _, err := helm(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: want a refusal %q, got %v", c.chart, c.set, c.want, err)
		}
	}
	// The preStop sleep needs Kubernetes 1.30: older clusters are refused by every chart.
	if _, err := helm(t, "dependency", "build", "../asf"); err != nil {
		t.Fatal(err)
	}
	for _, chart := range append(slices.Clone(services), "asf") {
		if _, err := helm(t, "template", "rel", "../"+chart, "--kube-version", "1.29.0"); err == nil || !strings.Contains(err.Error(), "requires kubeVersion") {
			t.Errorf("%s on Kubernetes 1.29: want a refusal, got %v", chart, err)
		}
	}
	// Longer sessions: the preStop wait and the grace period follow the session timeout,
	// in one chart and, through global.sessionTimeoutSeconds, in every session tier.
	out, err := helm(t, "template", "rel", "../webgate", "--set", "drain.sessionTimeoutSeconds=600")
	if err != nil {
		t.Fatal(err)
	}
	d := byKind(decodeStrict(t, out), "Deployment")[0].obj.(*appsv1.Deployment)
	checkPod(t, d.Name, d.Spec.Template.Spec)
	if got := env(d, "ASF_WEBGATE_SESSION_TIMEOUT"); got != "600s" {
		t.Errorf("ASF_WEBGATE_SESSION_TIMEOUT=%q, want 600s", got)
	}
	if _, err := helm(t, "dependency", "build", "../asf"); err != nil {
		t.Fatal(err)
	}
	out, err = helm(t, "template", "rel", "../asf", "--set", "global.sessionTimeoutSeconds=600")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int64{"rel-webgate": {610, 630}, "rel-atom": {610, 630}, "rel-loader": {610, 630},
		"rel-lbclient": {5, 25}, "rel-polaris": {5, 25}}
	for _, o := range byKind(decodeStrict(t, out), "Deployment") {
		d := o.obj.(*appsv1.Deployment)
		w, ok := want[d.Name]
		if !ok {
			continue
		}
		delete(want, d.Name)
		spec := d.Spec.Template.Spec
		checkPod(t, d.Name, spec)
		if got := [2]int64{spec.Containers[0].Lifecycle.PreStop.Sleep.Seconds, *spec.TerminationGracePeriodSeconds}; got != w {
			t.Errorf("%s: preStop and grace %v, want %v", d.Name, got, w)
		}
		if d.Name == "rel-webgate" && env(d, "ASF_WEBGATE_SESSION_TIMEOUT") != "600s" {
			t.Errorf("webgate: ASF_WEBGATE_SESSION_TIMEOUT=%q, want 600s", env(d, "ASF_WEBGATE_SESSION_TIMEOUT"))
		}
	}
	if len(want) != 0 {
		t.Errorf("Deployments missing: %v", want)
	}
}

// hpaMetrics renders chart's HPA with autoscaling on (and extra flags) and lists its
// metrics as "Resource cpu", "Pods <name>", "External <name> <selector>".
func hpaMetrics(t *testing.T, chart string, extra ...string) ([]string, error) {
	t.Helper()
	out, err := helm(t, append([]string{"template", "rel", "../" + chart, "--set", "autoscaling.enabled=true"}, extra...)...)
	if err != nil {
		return nil, err
	}
	hpas := byKind(decodeStrict(t, out), "HorizontalPodAutoscaler")
	if len(hpas) != 1 {
		t.Fatalf("%s: %d HPAs", chart, len(hpas))
	}
	var ms []string
	for _, m := range hpas[0].obj.(*autoscalingv2.HorizontalPodAutoscaler).Spec.Metrics {
		switch m.Type {
		case autoscalingv2.ResourceMetricSourceType:
			ms = append(ms, fmt.Sprintf("Resource %s %s %d", m.Resource.Name, m.Resource.Target.Type, *m.Resource.Target.AverageUtilization))
		case autoscalingv2.PodsMetricSourceType:
			ms = append(ms, fmt.Sprintf("Pods %s %s %s", m.Pods.Metric.Name, m.Pods.Target.Type, m.Pods.Target.AverageValue))
		case autoscalingv2.ExternalMetricSourceType:
			ms = append(ms, fmt.Sprintf("External %s %v %s %s", m.External.Metric.Name, m.External.Metric.Selector.MatchLabels, m.External.Target.Type, m.External.Target.Value))
		default:
			ms = append(ms, string(m.Type))
		}
	}
	return ms, nil
}

// TestAutoscalingPerTier: each tier's HPA scales on what bounds it. webgate, atom, lbclient
// (and polaris) on CPU; loaders on licence utilisation (Pods) and the queue wait at atom
// for their capability (External), rendered only where a metrics adapter serves them.
func TestAutoscalingPerTier(t *testing.T) {
	for _, svc := range []string{"webgate", "atom", "lbclient", "polaris"} {
		got, err := hpaMetrics(t, svc, adapterAPIs...)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"Resource cpu Utilization 70"}; !slices.Equal(got, want) {
			t.Errorf("%s: metrics %q, want %q", svc, got, want)
		}
		if _, err := hpaMetrics(t, svc, "--set", "autoscaling.targetCPUUtilizationPercentage=0"); err == nil {
			t.Errorf("%s: an HPA without a CPU target renders", svc)
		}
	}
	on := []string{"--set", "autoscaling.podMetric.enabled=true", "--set", "autoscaling.queueWait.enabled=true"}
	cpu := "Resource cpu Utilization 70"
	licence := "Pods asf_loader_licence_utilisation_ratio AverageValue 700m"
	wait := "External asf_atom_loader_wait_seconds_p95 map[capability:echo] Value 50m"
	for _, c := range []struct {
		name  string
		flags []string
		want  []string
	}{
		{"default", nil, []string{cpu}},
		{"enabled, no adapter", on, []string{cpu}},
		{"enabled, adapter", append(slices.Clone(on), adapterAPIs...), []string{cpu, licence, wait}},
		{"adapter only", append([]string{"-f", "testdata/adapter.yaml"}, adapterAPIs...), []string{licence, wait}},
		{"other capability", append(append(slices.Clone(on), adapterAPIs...), "--set", "env.ASF_LOADER_SERVICE=asr"),
			[]string{cpu, licence, "External asf_atom_loader_wait_seconds_p95 map[capability:asr] Value 50m"}},
		{"only the custom metrics API", append(slices.Clone(on), "--api-versions", "custom.metrics.k8s.io/v1beta1"), []string{cpu, licence}},
	} {
		got, err := hpaMetrics(t, "loader", c.flags...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("loader %s: metrics %q, want %q", c.name, got, c.want)
		}
	}
	// Without an adapter the adapter-only values leave nothing to scale on: refused.
	if _, err := hpaMetrics(t, "loader", "-f", "testdata/adapter.yaml"); err == nil || !strings.Contains(err.Error(), "no metric to scale on") {
		t.Errorf("adapter-only values without an adapter: want a refusal, got %v", err)
	}
}

// TestAdapterRules: deploy/helm/prometheus-adapter-rules.yaml serves the metric names the
// loader HPA asks for, from series the services export.
func TestAdapterRules(t *testing.T) {
	var rules struct {
		Rules struct {
			Custom, External []struct {
				SeriesQuery string `json:"seriesQuery"`
				Name        struct {
					Matches string `json:"matches"`
					As      string `json:"as"`
				} `json:"name"`
				MetricsQuery string `json:"metricsQuery"`
			}
		} `json:"rules"`
	}
	b, err := os.ReadFile("../prometheus-adapter-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	var values struct {
		Autoscaling struct {
			PodMetric, QueueWait struct{ Name string }
		}
	}
	vb, err := os.ReadFile("../loader/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(vb, &values); err != nil {
		t.Fatal(err)
	}
	src := map[string]string{}
	for _, f := range []string{"../../../services/loader/transport/grpc.go", "../../../services/atom/transport/metrics.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src[f] = string(b)
	}
	exported := func(series string) bool {
		for _, s := range src {
			if strings.Contains(s, `"`+series+`"`) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		kind, serves, series string
		rules                int
	}{
		{"custom", values.Autoscaling.PodMetric.Name, "asf_loader_licence_utilisation_ratio", len(rules.Rules.Custom)},
		{"external", values.Autoscaling.QueueWait.Name, "asf_atom_loader_wait_seconds", len(rules.Rules.External)},
	} {
		if c.rules != 1 {
			t.Fatalf("%s: %d rules, want 1", c.kind, c.rules)
		}
		r := rules.Rules.Custom
		if c.kind == "external" {
			r = rules.Rules.External
		}
		if r[0].Name.As != c.serves {
			t.Errorf("%s rule serves %q, the loader HPA asks for %q", c.kind, r[0].Name.As, c.serves)
		}
		if !strings.HasPrefix(r[0].SeriesQuery, c.series) || !exported(c.series) {
			t.Errorf("%s rule reads %q: want a series of %s, exported by a service", c.kind, r[0].SeriesQuery, c.series)
		}
		if !strings.Contains(r[0].MetricsQuery, "<<.LabelMatchers>>") {
			t.Errorf("%s rule query %q ignores the HPA's selector", c.kind, r[0].MetricsQuery)
		}
	}
}

func TestUmbrellaChart(t *testing.T) {
	if _, err := helm(t, "dependency", "build", "../asf"); err != nil {
		t.Fatal(err)
	}
	for _, values := range []string{"", "testdata/umbrella.yaml"} {
		t.Run(map[bool]string{true: "default", false: "nondefault"}[values == ""], func(t *testing.T) {
			args := []string{"../asf"}
			if values != "" {
				args = append(args, "-f", values)
			}
			if _, err := helm(t, append([]string{"lint", "--strict"}, args...)...); err != nil {
				t.Fatal(err)
			}
			out, err := helm(t, append([]string{"template", "rel"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			objs := decodeStrict(t, out)
			names := map[string]bool{}
			for _, o := range byKind(objs, "Deployment") {
				d := o.obj.(*appsv1.Deployment)
				names[d.Name] = true
				if d.Name != "rel-nats" {
					checkPod(t, d.Name, d.Spec.Template.Spec)
				}
			}
			for _, want := range []string{"rel-nats", "rel-polaris", "rel-lbclient", "rel-atom", "rel-webgate", "rel-loader"} {
				if !names[want] {
					t.Errorf("no Deployment %s (have %v)", want, names)
				}
			}
			if len(byKind(objs, "StatefulSet")) != 1 {
				t.Error("no Consul StatefulSet")
			}
			// Every tier that carries a session (webgate, atom, loader) waits out webgate's
			// session timeout before it stops.
			var sessionTimeout int64
			preStops := map[string]int64{}
			for _, o := range byKind(objs, "Deployment") {
				d := o.obj.(*appsv1.Deployment)
				if d.Name == "rel-nats" {
					continue
				}
				checkRollout(t, d)
				c := d.Spec.Template.Spec.Containers[0]
				if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
					preStops[d.Name] = c.Lifecycle.PreStop.Sleep.Seconds
				}
				if v := env(d, "ASF_WEBGATE_SESSION_TIMEOUT"); v != "" {
					if _, err := fmt.Sscanf(v, "%ds", &sessionTimeout); err != nil {
						t.Fatal(err)
					}
				}
			}
			if sessionTimeout == 0 {
				t.Fatal("webgate: no ASF_WEBGATE_SESSION_TIMEOUT")
			}
			for _, n := range []string{"rel-webgate", "rel-atom", "rel-loader"} {
				if preStops[n] <= sessionTimeout {
					t.Errorf("%s: preStop %ds not longer than the session timeout %ds", n, preStops[n], sessionTimeout)
				}
			}
			// The services find each other by the release's Service names.
			wiring := map[string]string{"ASF_POLARIS_CONSUL_ADDR": "rel-consul:8500", "ASF_POLARIS_NATS_URL": "nats://rel-nats:4222",
				"ASF_LOADER_POLARIS": "rel-polaris:6868", "ASF_ATOM_LB": "rel-lbclient:9989", "ASF_WEBGATE_ATOM": "rel-atom:9988"}
			for _, o := range byKind(objs, "Deployment") {
				for _, e := range o.obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Env {
					if want, ok := wiring[e.Name]; ok {
						if e.Value != want {
							t.Errorf("%s: %s=%q, want %q", o.name, e.Name, e.Value, want)
						}
						delete(wiring, e.Name)
					}
				}
			}
			if len(wiring) != 0 {
				t.Errorf("wiring variables missing: %v", wiring)
			}
			// NATS authorizes the nkeys of auth.conf and requires mutual TLS; polaris and
			// lbclient each mount only their own seed.
			for _, o := range byKind(objs, "Deployment") {
				d := o.obj.(*appsv1.Deployment)
				switch d.Name {
				case "rel-nats":
					checkNATSServer(t, d, true)
				case "rel-polaris", "rel-lbclient", "rel-atom", "rel-webgate", "rel-loader":
					svc := strings.TrimPrefix(d.Name, "rel-")
					checkNATSCredentials(t, svc, "rel-"+svc+"-nats", d)
				}
			}
		})
	}
}

// TestInsecure: global.insecure (umbrella) and insecure (a service chart) run NATS
// without authorization: no auth.conf, no TLS, no seed mounted, ASF_<SVC>_INSECURE set.
func TestInsecure(t *testing.T) {
	if _, err := helm(t, "dependency", "build", "../asf"); err != nil {
		t.Fatal(err)
	}
	out, err := helm(t, "template", "rel", "../asf", "--set", "global.insecure=true")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range byKind(decodeStrict(t, out), "Deployment") {
		d := o.obj.(*appsv1.Deployment)
		if d.Name == "rel-nats" {
			checkNATSServer(t, d, false)
			continue
		}
		checkNATSCredentials(t, strings.TrimPrefix(d.Name, "rel-"), "", d)
		if env(d, "ASF_"+strings.ToUpper(strings.TrimPrefix(d.Name, "rel-"))+"_INSECURE") != "true" {
			t.Errorf("%s: global.insecure does not set the insecure variable", d.Name)
		}
	}
	for _, svc := range []string{"polaris", "lbclient"} {
		out, err := helm(t, "template", "rel", "../"+svc, "--set", "insecure=true")
		if err != nil {
			t.Fatal(err)
		}
		d := byKind(decodeStrict(t, out), "Deployment")[0].obj.(*appsv1.Deployment)
		checkNATSCredentials(t, svc, "", d)
		if env(d, "ASF_"+strings.ToUpper(svc)+"_INSECURE") != "true" {
			t.Errorf("%s: insecure does not set ASF_%s_INSECURE", svc, strings.ToUpper(svc))
		}
	}
}

// TestTraceEndpoint: global.traceEndpoint (umbrella or a service chart) gives every
// service ASF_<SVC>_TRACE_ENDPOINT; unset, none has it (tracing off).
func TestTraceEndpoint(t *testing.T) {
	if _, err := helm(t, "dependency", "build", "../asf"); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{"", "jaeger-collector.tracing:4317"} {
		args := []string{"template", "rel", "../asf"}
		if set != "" {
			args = append(args, "--set", "global.traceEndpoint="+set)
		}
		out, err := helm(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, o := range byKind(decodeStrict(t, out), "Deployment") {
			d := o.obj.(*appsv1.Deployment)
			if d.Name == "rel-nats" {
				continue
			}
			n++
			name := "ASF_" + strings.ToUpper(strings.TrimPrefix(d.Name, "rel-")) + "_TRACE_ENDPOINT"
			if got := env(d, name); got != set {
				t.Errorf("%s: %s = %q, want %q", d.Name, name, got, set)
			}
		}
		if n != 5 {
			t.Errorf("%d service deployments, want 5", n)
		}
	}
	out, err := helm(t, "template", "rel", "../loader", "--set", "global.traceEndpoint=otel:4317")
	if err != nil {
		t.Fatal(err)
	}
	if d := byKind(decodeStrict(t, out), "Deployment")[0].obj.(*appsv1.Deployment); env(d, "ASF_LOADER_TRACE_ENDPOINT") != "otel:4317" {
		t.Errorf("loader chart: global.traceEndpoint does not set ASF_LOADER_TRACE_ENDPOINT")
	}
}

// env is the literal value of the first container's variable name ("" when unset).
func env(d *appsv1.Deployment, name string) string {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// checkNATSCredentials: polaris and lbclient read their seed from the Secret secret (""
// for none), mounted with only their own key, readable by the group (fsGroup) and no one
// else; the other services mount no NATS credentials.
func checkNATSCredentials(t *testing.T, svc, secret string, d *appsv1.Deployment) {
	t.Helper()
	holds := svc == "polaris" || svc == "lbclient"
	seedEnv := "ASF_" + strings.ToUpper(svc) + "_NATS_NKEY_SEED_FILE"
	spec := d.Spec.Template.Spec
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == "nats-credentials" {
			vol = &spec.Volumes[i]
		}
	}
	if !holds || secret == "" {
		if vol != nil || env(d, seedEnv) != "" {
			t.Errorf("%s: NATS credentials mounted where none are wanted", d.Name)
		}
		return
	}
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != secret {
		t.Fatalf("%s: no Secret volume nats-credentials of %s: %+v", d.Name, secret, vol)
	}
	if it := vol.Secret.Items; len(it) != 1 || it[0].Key != svc+".nk" {
		t.Errorf("%s: NATS volume projects %+v, want only %s.nk", d.Name, it, svc)
	}
	if m := vol.Secret.DefaultMode; m == nil || *m != 0o440 {
		t.Errorf("%s: NATS seed mode %v, want 0440", d.Name, m)
	}
	if got := env(d, seedEnv); got != "/run/secrets/asf-nats/"+svc+".nk" {
		t.Errorf("%s: %s=%q", d.Name, seedEnv, got)
	}
}

// checkNATSServer: the NATS server starts with -c auth.conf and mutual TLS from their
// Secrets (secured), or with neither.
func checkNATSServer(t *testing.T, d *appsv1.Deployment, secured bool) {
	t.Helper()
	spec := d.Spec.Template.Spec
	args := strings.Join(spec.Containers[0].Args, " ")
	secrets := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			secrets[v.Secret.SecretName] = true
		}
	}
	want := []string{"-c /etc/nats/auth/auth.conf", "--tlsverify", "--tlscacert=/etc/nats/tls/ca.crt"}
	for _, w := range want {
		if strings.Contains(args, w) != secured {
			t.Errorf("%s: args %q: %q present is %v, want %v", d.Name, args, w, !secured, secured)
		}
	}
	if secured != (secrets["rel-nats-auth"] && secrets["rel-nats-tls"]) || !secured && len(secrets) != 0 {
		t.Errorf("%s: Secret volumes %v", d.Name, secrets)
	}
}
