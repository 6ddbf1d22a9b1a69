package test

// Live tests: every chart installed, upgraded and uninstalled with helm against a real
// control plane (package cluster: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler; kwok for the nodes and the pods' status). They run when ASF_K8S
// names the folder of those binaries (deploy/helm/test/run.sh builds it and sets it).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/athenaserving/asf/deploy/helm/test/cluster"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// live is the running control plane, nil unless ASF_K8S is set.
var live *cluster.Cluster

// pkiDir holds asfpki's CA and service certificates (ca.crt, <service>.crt/.key, and
// nats.crt/.key for the umbrella's NATS server).
var pkiDir string

// natsDir holds asfnats's credentials: <service>.nk, <service>.pub and auth.conf.
var natsDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tools := os.Getenv("ASF_K8S")
	if tools == "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "asf-helm-live-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	c, err := cluster.Start(context.Background(), cluster.Options{Tools: tools, Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "control plane:", err)
		return 1
	}
	fmt.Printf("control plane up in %v (%s, state in %s)\n", time.Since(start).Round(100*time.Millisecond), c.Server, dir)
	// The internal plane's certificates, made as an operator makes them (docs/operations.md):
	// a CA and one tier certificate per service, for the charts' tls.secretName Secrets.
	// The NATS server's certificate (identity nats) and the NATS credentials
	// (docs/deploy.md), for the Secrets of the NATS server, polaris and lbclient.
	pkiDir = filepath.Join(dir, "pki")
	natsDir = filepath.Join(dir, "nats")
	for _, args := range [][]string{
		{"./cmd/asfpki", "init", "--dir", pkiDir, "--instance", "*"},
		{"./cmd/asfpki", "issue", "--dir", pkiDir, "--service", "nats", "--instance", "*"},
		{"./cmd/asfnats", "init", "--dir", natsDir},
	} {
		gen := exec.Command("go", append([]string{"run"}, args...)...)
		gen.Dir = filepath.Join("..", "..", "..", "tools")
		gen.Env = append(os.Environ(), "GOWORK=")
		if out, err := gen.CombinedOutput(); err != nil {
			c.Stop()
			fmt.Fprintf(os.Stderr, "%s: %v\n%s", strings.Join(args, " "), err, out)
			return 1
		}
	}
	// An interrupt still stops the components (kube-apiserver before etcd) and removes dir.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		c.Stop()
		os.RemoveAll(dir)
		os.Exit(2)
	}()
	defer c.Stop()
	live = c
	code := m.Run()
	if code != 0 {
		fmt.Println(c.Logs(30))
	}
	return code
}

// liveCase is one chart with one values file, installed as release in namespace ns.
type liveCase struct {
	chart, values, release, ns string
	// upgrade are the helm flags of the upgrade (a changed pod annotation).
	upgrade []string
	// storageClass of the Consul volume the umbrella claims (nil: no volume).
	storageClass *string
}

func TestLiveCharts(t *testing.T) {
	if live == nil {
		t.Skip("ASF_K8S not set (deploy/helm/test/run.sh sets it)")
	}
	if _, err := helm(t, "dependency", "build", "../asf"); err != nil {
		t.Fatal(err)
	}
	var cases []liveCase
	for _, svc := range services {
		for _, v := range []string{"", "testdata/production.yaml", "testdata/nondefault.yaml"} {
			cases = append(cases, liveCase{chart: svc, values: v, release: "rel",
				upgrade: []string{"--set-string", "podAnnotations.asf-test/revision=2"}})
		}
	}
	var umbrellaUpgrade []string
	for _, svc := range services {
		umbrellaUpgrade = append(umbrellaUpgrade, "--set-string", svc+".podAnnotations.asf-test/revision=2")
	}
	none, fast := "", "fast"
	cases = append(cases,
		liveCase{chart: "asf", release: "asf", upgrade: umbrellaUpgrade, storageClass: &none},
		liveCase{chart: "asf", values: "testdata/umbrella.yaml", release: "asf", upgrade: umbrellaUpgrade, storageClass: &fast})
	for i := range cases {
		c := &cases[i]
		name := c.chart + "/" + valuesName(c.values)
		c.ns = fmt.Sprintf("t%d-%s-%s", i, c.chart, valuesName(c.values))
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runLiveCase(t, *c)
		})
	}
}

// TestLiveUmbrellaTwoNamespaces: the same release name in two namespaces installs twice
// without colliding, and removing one leaves the other whole.
func TestLiveUmbrellaTwoNamespaces(t *testing.T) {
	if live == nil {
		t.Skip("ASF_K8S not set (deploy/helm/test/run.sh sets it)")
	}
	if _, err := helm(t, "dependency", "build", "../asf"); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	none := ""
	a := liveCase{chart: "asf", release: "asf", ns: "twin-a", storageClass: &none}
	b := a
	b.ns = "twin-b"
	for _, c := range []liveCase{a, b} {
		prepareNamespace(t, c)
		install(t, c)
	}
	for _, c := range []liveCase{a, b} {
		checkInstalled(t, c)
	}
	uninstall(t, a)
	checkInstalled(t, b)
	if _, err := live.Kubectl(ctx, "get", "statefulset", "asf-consul", "-n", b.ns); err != nil {
		t.Fatal(err)
	}
	uninstall(t, b)
}

func valuesName(v string) string {
	if v == "" {
		return "default"
	}
	return strings.TrimSuffix(filepath.Base(v), ".yaml")
}

func runLiveCase(t *testing.T, c liveCase) {
	prepareNamespace(t, c)
	install(t, c)
	checkInstalled(t, c)
	upgradeRolling(t, c)
	checkInstalled(t, c)
	uninstall(t, c)
}

// fixtureLabel marks what the test makes beside the release (secrets, volumes).
const fixtureLabel = "asf-test/fixture=true"

// prepareNamespace makes the namespace under PodSecurity restricted (enforced, and warned
// so that helm prints a violation at once), the secrets the values name, and the volume
// the umbrella's Consul claims.
func prepareNamespace(t *testing.T, c liveCase) {
	t.Helper()
	ctx := t.Context()
	ns := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
`, c.ns)
	if _, err := live.KubectlIn(ctx, ns, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	// The namespace's default ServiceAccount, made by the controller manager, must exist
	// before pods can be admitted.
	waitFor(t, 30*time.Second, "default ServiceAccount in "+c.ns, func() (bool, string) {
		_, err := live.Kubectl(ctx, "get", "serviceaccount", "default", "-n", c.ns)
		return err == nil, fmt.Sprint(err)
	})
	secrets := map[string][]string{
		"polaris-admin":      {"token=test-admin-token"},
		"webgate-demo":       {"demo-app=app1:key1:secret1"},
		"webgate-apps":       {"apps.json=[]"},
		c.release + "-extra": {"value=extra"},
	}
	// Each chart's internal TLS Secret (tls.secretName): ca.crt, tls.crt, tls.key.
	for _, svc := range services {
		secrets[c.release+"-"+svc+"-tls"] = []string{"@ca.crt=" + filepath.Join(pkiDir, "ca.crt"),
			"@tls.crt=" + filepath.Join(pkiDir, svc+".crt"), "@tls.key=" + filepath.Join(pkiDir, svc+".key")}
	}
	// The NATS credentials (nats.credentials.existingSecret of polaris and lbclient: only
	// that service's seed) and the umbrella's NATS server Secrets: auth.conf
	// (nats.auth.existingSecret) and its TLS certificate (nats.tls.secretName).
	for _, svc := range []string{"polaris", "lbclient"} {
		secrets[c.release+"-"+svc+"-nats"] = []string{"@" + svc + ".nk=" + filepath.Join(natsDir, svc+".nk")}
	}
	secrets[c.release+"-nats-auth"] = []string{"@auth.conf=" + filepath.Join(natsDir, "auth.conf")}
	secrets[c.release+"-nats-tls"] = []string{"@ca.crt=" + filepath.Join(pkiDir, "ca.crt"),
		"@tls.crt=" + filepath.Join(pkiDir, "nats.crt"), "@tls.key=" + filepath.Join(pkiDir, "nats.key")}
	for name, kvs := range secrets {
		args := []string{"create", "secret", "generic", name, "-n", c.ns}
		for _, kv := range kvs {
			if f, ok := strings.CutPrefix(kv, "@"); ok {
				args = append(args, "--from-file="+f)
			} else {
				args = append(args, "--from-literal="+kv)
			}
		}
		if _, err := live.Kubectl(ctx, args...); err != nil {
			t.Fatal(err)
		}
		if _, err := live.Kubectl(ctx, "label", "secret", name, "-n", c.ns, fixtureLabel); err != nil {
			t.Fatal(err)
		}
	}
	if c.storageClass != nil {
		pv := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata:
  name: %[1]s-consul
  labels: {asf-test/fixture: "true"}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: %[2]q
  claimRef: {namespace: %[1]s, name: data-%[3]s-consul-0}
  hostPath: {path: /tmp/asf-test/%[1]s}
`, c.ns, *c.storageClass, c.release)
		if _, err := live.KubectlIn(ctx, pv, "apply", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = live.Kubectl(context.Background(), "delete", "pv", c.ns+"-consul", "--wait=false", "--ignore-not-found")
		})
	}
	t.Cleanup(func() {
		_, _ = live.Kubectl(context.Background(), "delete", "namespace", c.ns, "--wait=false", "--ignore-not-found")
	})
}

func chartArgs(c liveCase) []string {
	args := []string{c.release, filepath.Join("..", c.chart), "-n", c.ns}
	if c.values != "" {
		args = append(args, "-f", c.values)
	}
	return args
}

// helmLive runs helm against the live cluster; a PodSecurity warning is an error.
func helmLive(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(t.Context(), helmBin(t), append(args, "--kubeconfig", live.Kubeconfig)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		// The namespace's warnings say why (a pod the API server refused, say).
		var events string
		if i := slices.Index(args, "-n"); i >= 0 && i+1 < len(args) {
			events, _ = live.Kubectl(context.Background(), "get", "events", "-n", args[i+1], "--field-selector=type=Warning")
		}
		t.Fatalf("helm %s: %v\n%s%s\nwarning events:\n%s", strings.Join(args, " "), err, out.String(), errb.String(), events)
	}
	if strings.Contains(errb.String(), "PodSecurity") {
		t.Fatalf("helm %s: PodSecurity warning:\n%s", strings.Join(args, " "), errb.String())
	}
	return out.String()
}

func install(t *testing.T, c liveCase) {
	t.Helper()
	start := time.Now()
	helmLive(t, append(append([]string{"install"}, chartArgs(c)...), "--wait", "--wait-for-jobs", "--timeout", "2m")...)
	t.Logf("%s: installed in %v", c.ns, time.Since(start).Round(100*time.Millisecond))
}

// checkInstalled: every rendered object exists, Deployments are Available and settled,
// StatefulSets ready, PDBs observed by the disruption controller, HPAs AbleToScale, Jobs
// complete, and every pod of the release scheduled on a node.
func checkInstalled(t *testing.T, c liveCase) {
	t.Helper()
	ctx := t.Context()
	manifest := helmLive(t, "get", "manifest", c.release, "-n", c.ns)
	out, err := live.KubectlIn(ctx, manifest, "get", "-n", c.ns, "-f", "-", "-o", "name")
	if err != nil {
		t.Fatalf("rendered objects missing: %v\n%s", err, out)
	}
	sel := "app.kubernetes.io/instance=" + c.release
	deps := settleDeployments(t, c)
	if len(deps) == 0 {
		t.Fatal("no Deployment")
	}
	if _, err := live.Kubectl(ctx, "wait", "--for=condition=Available", "deployment", "-l", sel, "-n", c.ns, "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "statefulset") {
		if _, err := live.Kubectl(ctx, "rollout", "status", "statefulset", "-l", sel, "-n", c.ns, "--timeout=60s"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "PodDisruptionBudgets with status", func() (bool, string) {
		var l struct {
			Items []policyv1.PodDisruptionBudget
		}
		if err := getJSON(ctx, &l, "get", "pdb", "-l", sel, "-n", c.ns); err != nil {
			return false, err.Error()
		}
		if len(l.Items) == 0 {
			return false, "no PodDisruptionBudget"
		}
		for _, p := range l.Items {
			s := p.Status
			if s.ObservedGeneration < p.Generation || s.ExpectedPods == 0 || s.CurrentHealthy < s.DesiredHealthy ||
				!hasCondition(s.Conditions, policyv1.DisruptionAllowedCondition) {
				return false, fmt.Sprintf("%s: %+v", p.Name, s)
			}
		}
		return true, ""
	})
	if strings.Contains(out, "horizontalpodautoscaler") {
		if _, err := live.Kubectl(ctx, "wait", "--for=condition=AbleToScale=True", "hpa", "-l", sel, "-n", c.ns, "--timeout=60s"); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(out, "job.batch/") {
		if _, err := live.Kubectl(ctx, "wait", "--for=condition=Complete", "job", "-l", sel, "-n", c.ns, "--timeout=60s"); err != nil {
			t.Fatal(err)
		}
	}
	checkPodReferences(t, c)
	pods, err := live.Kubectl(ctx, "get", "pods", "-n", c.ns, "-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(pods), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || !strings.HasPrefix(f[1], "kwok-node-") || (f[2] != "Running" && f[2] != "Succeeded") {
			t.Errorf("pod not scheduled and running: %q", l)
		}
	}
}

// settleDeployments waits until every Deployment of the release has rolled out at its
// settled size (at least the HPA's minReplicas when autoscaled) and returns them.
func settleDeployments(t *testing.T, c liveCase) []appsv1.Deployment {
	t.Helper()
	ctx := t.Context()
	sel := "app.kubernetes.io/instance=" + c.release
	var deps []appsv1.Deployment
	waitFor(t, 90*time.Second, "Deployments settled", func() (bool, string) {
		var dl struct{ Items []appsv1.Deployment }
		var hl struct {
			Items []autoscalingv2.HorizontalPodAutoscaler
		}
		if err := getJSON(ctx, &dl, "get", "deployment", "-l", sel, "-n", c.ns); err != nil {
			return false, err.Error()
		}
		if err := getJSON(ctx, &hl, "get", "hpa", "-l", sel, "-n", c.ns); err != nil {
			return false, err.Error()
		}
		minOf := map[string]int32{}
		for _, h := range hl.Items {
			if h.Spec.MinReplicas != nil {
				minOf[h.Spec.ScaleTargetRef.Name] = *h.Spec.MinReplicas
			}
		}
		for _, d := range dl.Items {
			s, want := d.Status, *d.Spec.Replicas
			if s.ObservedGeneration < d.Generation || want < minOf[d.Name] ||
				s.Replicas != want || s.UpdatedReplicas != want || s.AvailableReplicas != want || s.UnavailableReplicas != 0 {
				return false, fmt.Sprintf("%s: spec %d (min %d), status %+v", d.Name, want, minOf[d.Name], s)
			}
		}
		deps = dl.Items
		return true, ""
	})
	return deps
}

// upgradeRolling upgrades the release with a changed pod annotation while watching its
// Deployments: each rolls its pods over to the new template, with a surge pod and never
// fewer available pods than before (maxUnavailable 0).
func upgradeRolling(t *testing.T, c liveCase) {
	t.Helper()
	ctx := t.Context()
	before := map[string]int32{}
	generation := map[string]int64{}
	for _, d := range settleDeployments(t, c) {
		before[d.Name] = *d.Spec.Replicas
		generation[d.Name] = d.Generation
	}
	sel := "app.kubernetes.io/instance=" + c.release
	wctx, stop := context.WithCancel(ctx)
	cmd := exec.CommandContext(wctx, live.Bin("kubectl"), "--kubeconfig", live.Kubeconfig,
		"get", "deployment", "-l", sel, "-n", c.ns, "--watch", "-o", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		seen     = map[string]int{} // events per Deployment
		surged   = map[string]bool{}
		problems []string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		dec := json.NewDecoder(stdout)
		for {
			var d appsv1.Deployment
			if err := dec.Decode(&d); err != nil {
				return
			}
			mu.Lock()
			seen[d.Name]++
			if n, ok := before[d.Name]; ok {
				if d.Status.AvailableReplicas < n {
					problems = append(problems, fmt.Sprintf("%s: %d available of %d during the upgrade (status %+v)", d.Name, d.Status.AvailableReplicas, n, d.Status))
				}
				if d.Status.Replicas > n {
					surged[d.Name] = true
				}
			}
			mu.Unlock()
		}
	}()
	// The watch lists the current state first: wait for it before upgrading.
	waitFor(t, 30*time.Second, "the Deployment watch", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == len(before), fmt.Sprint(seen)
	})
	start := time.Now()
	args := append(append([]string{"upgrade"}, chartArgs(c)...), "--wait", "--wait-for-jobs", "--timeout", "2m")
	helmLive(t, append(args, c.upgrade...)...)
	for name := range before {
		if _, err := live.Kubectl(ctx, "rollout", "status", "deployment/"+name, "-n", c.ns, "--timeout=60s"); err != nil {
			t.Fatal(err)
		}
	}
	after := settleDeployments(t, c)
	stop()
	_ = cmd.Wait()
	<-done
	t.Logf("%s: upgraded in %v", c.ns, time.Since(start).Round(100*time.Millisecond))
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	rolled := 0
	for _, d := range after {
		if d.Generation == generation[d.Name] {
			continue // not changed by the upgrade (the umbrella's NATS)
		}
		rolled++
		if !surged[d.Name] {
			t.Errorf("%s: no surge pod seen: the upgrade did not roll its pods", d.Name)
		}
	}
	if rolled == 0 {
		t.Error("the upgrade changed no Deployment")
	}
	// Every pod of a Deployment now carries the new template.
	var pl struct{ Items []corev1.Pod }
	if err := getJSON(ctx, &pl, "get", "pods", "-l", sel, "-n", c.ns); err != nil {
		t.Fatal(err)
	}
	for _, p := range pl.Items {
		owned := len(p.OwnerReferences) == 1 && p.OwnerReferences[0].Kind == "ReplicaSet"
		// The umbrella's own NATS Deployment has no podAnnotations value.
		if owned && !strings.Contains(p.Name, "-nats-") && p.Annotations["asf-test/revision"] != "2" {
			t.Errorf("%s: pod of the old template after the upgrade", p.Name)
		}
	}
}

// uninstall removes the release and checks that nothing of it is left: every rendered
// object gone, and the namespace holding only what it had before (its default
// ServiceAccount and root CA ConfigMap, the test's fixtures) besides events and the
// Consul volume claim that a StatefulSet keeps by design.
func uninstall(t *testing.T, c liveCase) {
	t.Helper()
	ctx := t.Context()
	manifest := helmLive(t, "get", "manifest", c.release, "-n", c.ns)
	start := time.Now()
	helmLive(t, "uninstall", c.release, "-n", c.ns, "--wait", "--timeout", "2m")
	t.Logf("%s: uninstalled in %v", c.ns, time.Since(start).Round(100*time.Millisecond))
	out, err := live.KubectlIn(ctx, manifest, "get", "-n", c.ns, "-f", "-", "--ignore-not-found", "-o", "name")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("objects of the release left after uninstall: %v\n%s", err, out)
	}
	types := namespacedTypes(t)
	waitFor(t, 60*time.Second, "an empty namespace", func() (bool, string) {
		out, err := live.Kubectl(ctx, "get", strings.Join(types, ","), "-n", c.ns, "-o",
			`jsonpath={range .items[*]}{.kind}/{.metadata.name} {.metadata.labels.asf-test/fixture}{"\n"}{end}`)
		if err != nil {
			return false, err.Error()
		}
		var left []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 || len(f) == 2 && f[1] == "true" {
				continue
			}
			switch f[0] {
			case "ServiceAccount/default", "ConfigMap/kube-root-ca.crt", "PersistentVolumeClaim/data-" + c.release + "-consul-0":
				continue
			}
			left = append(left, f[0])
		}
		return len(left) == 0, strings.Join(left, " ")
	})
}

var (
	typesOnce sync.Once
	typesList []string
	typesErr  error
)

// namespacedTypes lists every namespaced resource type that can be listed, but events.
func namespacedTypes(t *testing.T) []string {
	t.Helper()
	typesOnce.Do(func() {
		var out string
		out, typesErr = live.Kubectl(context.Background(), "api-resources", "--verbs=list", "--namespaced", "-o", "name")
		for _, n := range strings.Fields(out) {
			if n != "events" && n != "events.events.k8s.io" {
				typesList = append(typesList, n)
			}
		}
	})
	if typesErr != nil || len(typesList) == 0 {
		t.Fatalf("api-resources: %v", typesErr)
	}
	return slices.Clone(typesList)
}

func getJSON(ctx context.Context, v any, args ...string) error {
	out, err := live.Kubectl(ctx, append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

func hasCondition(conds []metav1.Condition, typ string) bool {
	for _, c := range conds {
		if c.Type == typ {
			return true
		}
	}
	return false
}

// waitFor polls cond every 250 ms for at most d; on timeout the test fails with the last
// state cond reported.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if err := live.Exited(); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after %v: %s", what, d, state)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// TestLiveRefused: what only a real API server refuses fails the install: a negative CPU
// request (decodes fine, fails validation) and a hostPath volume (admitted by the schema,
// refused by PodSecurity restricted).
func TestLiveRefused(t *testing.T) {
	if live == nil {
		t.Skip("ASF_K8S not set (deploy/helm/test/run.sh sets it)")
	}
	for i, tc := range []struct {
		name, want string
		set        []string
	}{
		{"negative-cpu", "must be greater than or equal to 0", []string{"--set", "resources.requests.cpu=-1"}},
		{"hostpath", "PodSecurity", []string{"--set-json", `extraVolumes=[{"name":"host","hostPath":{"path":"/"}}]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := liveCase{chart: "atom", release: "rel", ns: fmt.Sprintf("refused-%d", i)}
			prepareNamespace(t, c)
			args := append(append([]string{"install"}, chartArgs(c)...), "--wait", "--timeout", "20s", "--kubeconfig", live.Kubeconfig)
			out, err := exec.CommandContext(t.Context(), helmBin(t), append(args, tc.set...)...).CombinedOutput()
			if err == nil && !strings.Contains(string(out), tc.want) {
				t.Fatalf("install accepted:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("install failed without %q:\n%s", tc.want, out)
			}
		})
	}
}

// checkPodReferences does what a kubelet would before starting a container: every Secret
// and ConfigMap a pod of the release names (volumes, env, envFrom; not the optional ones)
// exists with the keys it names.
func checkPodReferences(t *testing.T, c liveCase) {
	t.Helper()
	ctx := t.Context()
	var pods struct{ Items []corev1.Pod }
	if err := getJSON(ctx, &pods, "get", "pods", "-n", c.ns); err != nil {
		t.Fatal(err)
	}
	var secrets struct{ Items []corev1.Secret }
	if err := getJSON(ctx, &secrets, "get", "secrets", "-n", c.ns); err != nil {
		t.Fatal(err)
	}
	var cms struct{ Items []corev1.ConfigMap }
	if err := getJSON(ctx, &cms, "get", "configmaps", "-n", c.ns); err != nil {
		t.Fatal(err)
	}
	keys := map[string]map[string]bool{} // "secret/name" or "configmap/name" → keys
	for _, s := range secrets.Items {
		keys["secret/"+s.Name] = map[string]bool{}
		for k := range s.Data {
			keys["secret/"+s.Name][k] = true
		}
	}
	for _, m := range cms.Items {
		keys["configmap/"+m.Name] = map[string]bool{}
		for k := range m.Data {
			keys["configmap/"+m.Name][k] = true
		}
	}
	need := func(pod, ref, key string, optional *bool) {
		if optional != nil && *optional {
			return
		}
		have, ok := keys[ref]
		if !ok {
			t.Errorf("pod %s: %s does not exist", pod, ref)
		} else if key != "" && !have[key] {
			t.Errorf("pod %s: %s has no key %q", pod, ref, key)
		}
	}
	checked := 0
	for _, p := range pods.Items {
		for _, v := range p.Spec.Volumes {
			if s := v.Secret; s != nil {
				need(p.Name, "secret/"+s.SecretName, "", s.Optional)
				for _, it := range s.Items {
					need(p.Name, "secret/"+s.SecretName, it.Key, s.Optional)
				}
				checked++
			}
			if m := v.ConfigMap; m != nil {
				need(p.Name, "configmap/"+m.Name, "", m.Optional)
				for _, it := range m.Items {
					need(p.Name, "configmap/"+m.Name, it.Key, m.Optional)
				}
				checked++
			}
		}
		for _, ctr := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
			for _, e := range ctr.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					need(p.Name, "secret/"+r.Name, r.Key, r.Optional)
					checked++
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					need(p.Name, "configmap/"+r.Name, r.Key, r.Optional)
					checked++
				}
			}
			for _, e := range ctr.EnvFrom {
				if r := e.SecretRef; r != nil {
					need(p.Name, "secret/"+r.Name, "", r.Optional)
				}
				if r := e.ConfigMapRef; r != nil {
					need(p.Name, "configmap/"+r.Name, "", r.Optional)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no pod names a Secret or ConfigMap: the internal TLS Secret is missing from the pods")
	}
	checkNATSMounts(t, pods.Items)
}

// checkNATSMounts: the pods of polaris and lbclient (and the NATS server) mount the
// Secret volume their NATS variable (argument) names a file of, with that file's key; the
// references themselves are checked above.
func checkNATSMounts(t *testing.T, pods []corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		name := p.Labels["app.kubernetes.io/name"]
		var want string // the file the container is told to read
		ctr := p.Spec.Containers[0]
		switch name {
		case "polaris", "lbclient":
			for _, e := range ctr.Env {
				if e.Name == "ASF_"+strings.ToUpper(name)+"_NATS_NKEY_SEED_FILE" {
					want = e.Value
				}
			}
		case "nats":
			if i := slices.Index(ctr.Args, "-c"); i >= 0 && i+1 < len(ctr.Args) {
				want = ctr.Args[i+1]
			}
		default:
			continue
		}
		if want == "" {
			t.Errorf("pod %s: no NATS credentials (seed file variable or -c auth.conf)", p.Name)
			continue
		}
		if !mountsSecretFile(p, ctr, want) {
			t.Errorf("pod %s: %s is not a key of a mounted Secret", p.Name, want)
		}
	}
}

// mountsSecretFile tells whether file is a key projected from a Secret volume mounted in ctr.
func mountsSecretFile(p corev1.Pod, ctr corev1.Container, file string) bool {
	for _, m := range ctr.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					return true
				}
			}
		}
	}
	return false
}

// TestLiveLoaderAdapterHPA: the loader rendered for a cluster with a metrics adapter
// (testdata/adapter.yaml: licence utilisation and queue wait, no CPU) is accepted by the API
// server as rendered: its HPA keeps the Pods and External metrics and is AbleToScale, and
// the pods keep their preStop sleep and grace period.
func TestLiveLoaderAdapterHPA(t *testing.T) {
	if live == nil {
		t.Skip("ASF_K8S not set (deploy/helm/test/run.sh sets it)")
	}
	ctx := t.Context()
	c := liveCase{chart: "loader", values: "testdata/adapter.yaml", release: "rel", ns: "loader-adapter-hpa"}
	prepareNamespace(t, c)
	rendered, err := helm(t, append(append([]string{"template"}, chartArgs(c)...), adapterAPIs...)...)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := live.KubectlIn(ctx, rendered, "apply", "-n", c.ns, "-f", "-"); err != nil || strings.Contains(out, "PodSecurity") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if _, err := live.Kubectl(ctx, "wait", "--for=condition=Available", "deployment/rel-loader", "-n", c.ns, "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Kubectl(ctx, "wait", "--for=condition=AbleToScale=True", "hpa/rel-loader", "-n", c.ns, "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	var h autoscalingv2.HorizontalPodAutoscaler
	if err := getJSON(ctx, &h, "get", "hpa", "rel-loader", "-n", c.ns); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range h.Spec.Metrics {
		switch m.Type {
		case autoscalingv2.PodsMetricSourceType:
			got = append(got, "Pods "+m.Pods.Metric.Name)
		case autoscalingv2.ExternalMetricSourceType:
			got = append(got, fmt.Sprintf("External %s %v", m.External.Metric.Name, m.External.Metric.Selector.MatchLabels))
		default:
			got = append(got, string(m.Type))
		}
	}
	want := []string{"Pods asf_loader_licence_utilisation_ratio", "External asf_atom_loader_wait_seconds_p95 map[capability:echo]"}
	if !slices.Equal(got, want) {
		t.Errorf("HPA metrics as stored %q, want %q", got, want)
	}
	var d appsv1.Deployment
	if err := getJSON(ctx, &d, "get", "deployment", "rel-loader", "-n", c.ns); err != nil {
		t.Fatal(err)
	}
	checkRollout(t, &d)
	checkPod(t, d.Name, d.Spec.Template.Spec)
}
