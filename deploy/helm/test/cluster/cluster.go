// Package cluster runs a Kubernetes control plane on 127.0.0.1 for the live Helm tests:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler (real ones, built by
// deploy/helm/test/k8s/build.sh), and kwok, which plays the kubelets: it keeps a few fake
// nodes Ready and moves pods through their phases without running any container.
//
//	c, err := cluster.Start(ctx, cluster.Options{Tools: tools, Dir: dir})
//	if err != nil { ... }
//	defer c.Stop()
//	out, err := c.Kubectl(ctx, "get", "nodes")
//
// Every component listens on a free port of 127.0.0.1 (or on none), keeps its state and
// log under Dir, and authenticates with certificates made by Start. Stop ends kwok, the
// scheduler, the controller manager, the API server and then etcd.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Options configure Start.
type Options struct {
	// Tools is the folder deploy/helm/test/k8s/build.sh prints: bin/ holds etcd,
	// kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok, and
	// stages.yaml kwok's node and pod stages.
	Tools string
	// Dir receives certificates, kubeconfigs, etcd's data and the component logs.
	Dir string
	// Nodes is the number of fake nodes (default 3).
	Nodes int
	// Timeout bounds the start (default 90s).
	Timeout time.Duration
}

// Cluster is a running control plane.
type Cluster struct {
	opts Options
	// Kubeconfig is the path of an admin (system:masters) kubeconfig.
	Kubeconfig string
	// Server is the API server's URL.
	Server string
	procs  []*proc // in start order
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// extraStages adds what kwok's stock stages leave out: a Service of type LoadBalancer gets
// an ingress address (there is no cloud provider), as helm --wait expects.
const extraStages = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: service-load-balancer
spec:
  resourceRef:
    apiGroup: v1
    kind: Service
  selector:
    matchExpressions:
    - key: '.spec.type'
      operator: 'In'
      values: ['LoadBalancer']
    - key: '.status.loadBalancer.ingress'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      loadBalancer:
        ingress:
        - ip: 192.0.2.10
          ipMode: VIP
`

// Start runs the control plane and returns when the API server is ready, the nodes are
// Ready and the controller manager has made the default ServiceAccount. On error nothing
// is left running and the error carries the tail of each component's log.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Timeout == 0 {
		opts.Timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	c := &Cluster{opts: opts}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.Logs(40))
			c.Stop()
		}
	}()
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	if err := c.writeCredentials(); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	d := func(f string) string { return filepath.Join(opts.Dir, f) }
	if err := os.WriteFile(d("stages-extra.yaml"), []byte(extraStages), 0o600); err != nil {
		return nil, err
	}

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if err := c.start("etcd", "--name=default", "--data-dir="+d("etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return nil, err
	}
	if err := c.start("kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", apiPort),
		// No Service traffic here: the kubernetes Service needs no endpoints reconciled.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+d("apiserver.crt"), "--tls-private-key-file="+d("apiserver.key"),
		"--client-ca-file="+d("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+d("sa.pub"), "--service-account-signing-key-file="+d("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=false",
		"--profiling=false"); err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, "the API server's /readyz", func() bool {
		out, err := c.Kubectl(ctx, "get", "--raw=/readyz")
		return err == nil && strings.TrimSpace(out) == "ok"
	}); err != nil {
		return nil, err
	}
	// Each controller uses its own ServiceAccount, so RBAC applies to them as in a cluster.
	if err := c.start("kube-controller-manager",
		"--kubeconfig="+d("kube-controller-manager.kubeconfig"),
		"--authentication-kubeconfig="+d("kube-controller-manager.kubeconfig"),
		"--authorization-kubeconfig="+d("kube-controller-manager.kubeconfig"),
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+d("sa.key"), "--root-ca-file="+d("ca.crt"),
		"--cluster-signing-cert-file="+d("ca.crt"), "--cluster-signing-key-file="+d("ca.key"),
		"--leader-elect=false",
		"--profiling=false"); err != nil {
		return nil, err
	}
	if err := c.start("kube-scheduler",
		"--kubeconfig="+d("kube-scheduler.kubeconfig"),
		"--authentication-kubeconfig="+d("kube-scheduler.kubeconfig"),
		"--authorization-kubeconfig="+d("kube-scheduler.kubeconfig"),
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		"--profiling=false"); err != nil {
		return nil, err
	}
	if err := c.start("kwok",
		"--kubeconfig="+c.Kubeconfig,
		"--config="+filepath.Join(opts.Tools, "stages.yaml"), "--config="+d("stages-extra.yaml"),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.1/16", "--node-ip=10.0.0.1"); err != nil {
		return nil, err
	}
	if err := c.apply(ctx, nodes(opts.Nodes)); err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	if err := c.waitFor(ctx, "the nodes to be Ready", func() bool {
		_, err := c.Kubectl(ctx, "wait", "--for=condition=Ready", "node", "--all", "--timeout=5s")
		return err == nil
	}); err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, "the default ServiceAccount (controller manager)", func() bool {
		_, err := c.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "default")
		return err == nil
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Bin returns the path of one of the binaries (kubectl, say).
func (c *Cluster) Bin(name string) string {
	return filepath.Join(c.opts.Tools, "bin", name)
}

// Kubectl runs kubectl with the admin kubeconfig and returns its standard output; the
// error carries standard error.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.KubectlIn(ctx, "", args...)
}

// KubectlIn is Kubectl with stdin.
func (c *Cluster) KubectlIn(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Bin("kubectl"), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (c *Cluster) apply(ctx context.Context, manifest string) error {
	_, err := c.KubectlIn(ctx, manifest, "apply", "-f", "-")
	return err
}

// Stop ends the components in reverse start order (etcd last), each with SIGTERM and,
// after 10 s, SIGKILL. It can be called more than once.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

// Logs returns the last n lines of each component's log, and whether it exited.
func (c *Cluster) Logs(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		state := "running"
		select {
		case <-p.done:
			state = fmt.Sprintf("exited: %v", p.err)
		default:
		}
		fmt.Fprintf(&b, "==== %s (%s), last %d lines of %s\n", p.name, state, n, p.log)
		b.WriteString(tail(p.log, n))
	}
	return b.String()
}

// Exited reports a component that is no longer running, if any.
func (c *Cluster) Exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		default:
		}
	}
	return nil
}

func (c *Cluster) start(name string, args ...string) error {
	logPath := filepath.Join(c.opts.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.Bin(name), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = c.opts.Dir
	// Own process group; killed with the test process if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return nil
}

// waitFor polls cond every 200 ms until it holds, a component exits or ctx ends.
func (c *Cluster) waitFor(ctx context.Context, what string, cond func() bool) error {
	for {
		if cond() {
			return nil
		}
		if err := c.Exited(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error() + "\n"
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		l := s.Text()
		if len(l) > 400 {
			l = l[:400] + "..."
		}
		lines = append(lines, l)
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// freePorts returns n distinct free TCP ports of 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func nodes(n int) string {
	var b strings.Builder
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Node
metadata:
  name: %[1]s
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: %[1]s
    topology.kubernetes.io/zone: zone-%[2]d
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "32", memory: 256Gi, pods: "110", ephemeral-storage: 100Gi}
`, name, i)
	}
	return b.String()
}

// writeCredentials makes a CA, the API server's serving certificate, client certificates
// for the admin, the controller manager and the scheduler with their kubeconfigs, and the
// ServiceAccount signing key.
func (c *Cluster) writeCredentials() error {
	d := func(f string) string { return filepath.Join(c.opts.Dir, f) }
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "asf-helm-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writeCert(d("ca.crt"), caDER); err != nil {
		return err
	}
	if err := writeKey(d("ca.key"), caKey); err != nil {
		return err
	}
	serial := int64(2)
	issue := func(base string, subject pkix.Name, server bool) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		t := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      subject,
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		serial++
		if server {
			t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			t.DNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
			t.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, t, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := writeCert(d(base+".crt"), der); err != nil {
			return err
		}
		return writeKey(d(base+".key"), key)
	}
	if err := issue("apiserver", pkix.Name{CommonName: "kube-apiserver"}, true); err != nil {
		return err
	}
	clients := []struct {
		name    string
		subject pkix.Name
	}{
		{"admin", pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}}},
		{"kube-controller-manager", pkix.Name{CommonName: "system:kube-controller-manager"}},
		{"kube-scheduler", pkix.Name{CommonName: "system:kube-scheduler"}},
	}
	for _, cl := range clients {
		if err := issue(cl.name, cl.subject, false); err != nil {
			return err
		}
		kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: asf
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %[3]s
  user: {client-certificate: %[4]q, client-key: %[5]q}
contexts:
- name: asf
  context: {cluster: asf, user: %[3]s}
current-context: asf
`, c.Server, d("ca.crt"), cl.name, d(cl.name+".crt"), d(cl.name+".key"))
		if err := os.WriteFile(d(cl.name+".kubeconfig"), []byte(kc), 0o600); err != nil {
			return err
		}
	}
	c.Kubeconfig = d("admin.kubeconfig")
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(d("sa.key"), saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(d("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func writeCert(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}
