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
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s/%s: readiness probe is not GET /readyz", name, c.Name)
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
			if strings.HasSuffix(e.Name, "_DRAIN_TIMEOUT") {
				var secs int64
				if _, err := fmt.Sscanf(e.Value, "%ds", &secs); err != nil {
					t.Errorf("%s: drain timeout %q", name, e.Value)
				}
				if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds <= secs {
					t.Errorf("%s: grace period %v not longer than the drain time %ds", name, spec.TerminationGracePeriodSeconds, secs)
				}
			}
		}
	}
}

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
				out, err := helm(t, append([]string{"template", "rel"}, args...)...)
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
				if svc == "loader" && !kinds[autoscalingv2.PodsMetricSourceType] {
					t.Error("loader HPA does not scale on licence utilisation")
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

// TestGraceShorterThanDrainFails: a grace period not longer than the drain time is refused.
func TestGraceShorterThanDrainFails(t *testing.T) {
	_, err := helm(t, "template", "rel", "../loader", "--set", "drain.seconds=30", "--set", "terminationGracePeriodSeconds=30")
	if err == nil || !strings.Contains(err.Error(), "must be longer than drain.seconds") {
		t.Fatalf("want a refusal, got %v", err)
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
