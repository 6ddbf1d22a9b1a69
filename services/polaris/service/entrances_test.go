package service_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/pki"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris/adminapi"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/console"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/athenaserving/asf/services/polaris/service"
	"github.com/athenaserving/asf/services/polaris/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// testPKI is a CA made for one test (libs/pki), issuing server and client certificates.
type testPKI struct {
	t    *testing.T
	ca   *pki.CA
	pool *x509.CertPool
}

func newPKI(t *testing.T) *testPKI {
	ca, err := pki.NewCA("test CA")
	must(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &testPKI{t: t, ca: ca, pool: pool}
}

// issue makes a certificate for id (URI SAN spiffe://asf/<service>/<instance>), valid
// as a server for 127.0.0.1 and as a client.
func (p *testPKI) issue(id grpcx.Identity) tls.Certificate {
	leaf, err := p.ca.Issue(id)
	must(p.t, err)
	c, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	must(p.t, err)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// env is a polaris service layer behind all three entrances: gRPC (over mutual TLS, or
// plaintext when insecure), the admin API and the console.
type env struct {
	t        *testing.T
	reg      *registry.Registry
	center   *config.Center
	res      *resource.Service
	tokens   *auth.Store
	admin    string
	viewer   string
	pki      *testPKI
	grpcAddr string
	httpBase string
	insecure bool
}

var (
	appsKey   = config.Key{Project: "asf", Group: "default", Service: "webgate", Version: "v1", File: "apps.json"}
	echoKey   = config.Key{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: "echo.toml"}
	schemaKey = config.Key{Project: "asf", Group: "default", Service: "capabilities", Version: "v1", File: "schema_"}
	appsJSON  = `{"apps":[{"app_id":"a1","api_key":"k1","api_secret":"s3cr3t-value"}]}`
	ownAddr   = "127.0.0.1:7001"
	resKey    = resource.Key{Service: "echo", AppID: "app1", ID: "r1"}
)

func newEnv(t *testing.T, insecureMode bool) *env {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg, err := registry.New(ctx, registry.NewMemStore(), registry.Options{TTL: time.Hour})
	must(t, err)
	center := config.New(config.NewMemStore(), config.Options{History: 3})
	res := resource.New(resource.NewMemStore(), resource.Options{})
	tokens, err := auth.Open(filepath.Join(t.TempDir(), auth.FileName), nil)
	must(t, err)
	adminSecret, _, err := tokens.Bootstrap()
	must(t, err)
	viewerSecret, _, err := tokens.Create("viewer", auth.RoleViewer)
	must(t, err)
	cat, err := service.NewCatalog(ctx, center, nil, zerolog.Nop())
	must(t, err)
	done := make(chan struct{})
	go func() { defer close(done); cat.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; center.Close(); reg.Close(); res.Close() })

	svc := service.New(service.Options{Registry: reg, Center: center, Catalog: cat, Tokens: tokens, Resources: res,
		Prefix: "asf", Insecure: insecureMode})
	eps := service.MakeEndpoints(svc, zerolog.Nop(), prometheus.NewRegistry())

	e := &env{t: t, reg: reg, center: center, res: res, tokens: tokens, admin: adminSecret, viewer: viewerSecret, insecure: insecureMode}
	var opts []grpc.ServerOption
	if !insecureMode {
		e.pki = newPKI(t)
		srvCert := e.pki.issue(grpcx.Identity{Service: "polaris", Instance: "test"})
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{srvCert},
			ClientCAs: e.pki.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS13})))
	}
	gs := grpc.NewServer(opts...)
	polarispb.RegisterRegistryServer(gs, transport.NewRegistryServer(svc, eps))
	polarispb.RegisterConfigServer(gs, transport.NewConfigServer(svc, eps))
	polarispb.RegisterResourcesServer(gs, transport.NewResourcesServer(svc, eps))
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go func() { _ = gs.Serve(gl) }()
	t.Cleanup(gs.Stop)
	e.grpcAddr = gl.Addr().String()

	con := console.New(console.Options{Service: svc, Endpoints: eps, Log: zerolog.Nop()})
	api := adminapi.New(adminapi.Options{Service: svc, Endpoints: eps, Log: zerolog.Nop(), LoginLink: con.LoginLink})
	mux := http.NewServeMux()
	mux.Handle("/api/", api.Handler())
	mux.Handle("/", con.Handler())
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	t.Cleanup(func() { _ = hs.Close() })
	e.httpBase = "http://" + hl.Addr().String()

	// Fixtures: the apps file with a secret, a loader's config and resource, a schema,
	// and the loader registered at ownAddr for service echo.
	for _, f := range []struct {
		k config.Key
		c string
	}{{appsKey, appsJSON}, {echoKey, "a=1\n"}, {echoKey, "a=2\n"}, {config.Key{Project: "asf", Group: "default", Service: "capabilities", Version: "v1", File: "schema_echo.json"}, "{}"}} {
		_, err := center.Push(ctx, f.k, []byte(f.c), "", "")
		must(t, err)
		cat.Add(f.k)
	}
	_, err = res.Put(ctx, resKey, []byte("hotwords"))
	must(t, err)
	_, err = reg.Register(ctx, registry.Instance{Service: "echo", Addr: ownAddr, Kind: registry.KindProvider}, registry.Load{}, 0)
	must(t, err)
	return e
}

// Roles of the table: who calls. Identity roles exist on gRPC over mutual TLS only.
type role struct {
	name  string
	token string // "admin", "viewer", "bad" or ""
	id    *grpcx.Identity
}

var roles = []role{
	{name: "anonymous"},
	{name: "bad-token", token: "bad"},
	{name: "viewer", token: "viewer"},
	{name: "admin", token: "admin"},
	{name: "webgate", id: &grpcx.Identity{Service: "webgate", Instance: "10.0.0.9"}},
	{name: "loader-own", id: &grpcx.Identity{Service: "loader", Instance: ownAddr}},
	{name: "loader-other", id: &grpcx.Identity{Service: "loader", Instance: "127.0.0.1:7002"}},
	{name: "loader-host", id: &grpcx.Identity{Service: "loader", Instance: "127.0.0.1"}},
	{name: "tool", id: &grpcx.Identity{Service: "asfctl", Instance: "ops"}},
}

func (e *env) secret(r role) string {
	switch r.token {
	case "admin":
		return e.admin
	case "viewer":
		return e.viewer
	case "bad":
		return "plr_unknown_token"
	}
	return ""
}

// call is one operation through one entrance: it returns the answer's code (0: ok).
type call func(ctx context.Context, e *env, r role) int

// grpcConn dials polaris's gRPC as role r: its certificate (none for token roles and
// anonymous callers over TLS) and its token in the metadata.
func (e *env) grpcConn(r role) (*grpc.ClientConn, context.Context) {
	ctx := context.Background()
	if s := e.secret(r); s != "" {
		ctx = transport.WithToken(ctx, s)
	}
	creds := insecure.NewCredentials()
	if !e.insecure {
		cfg := &tls.Config{RootCAs: e.pki.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
		if r.id != nil {
			cfg.Certificates = []tls.Certificate{e.pki.issue(*r.id)}
		}
		creds = credentials.NewTLS(cfg)
	}
	cc, err := grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(creds))
	must(e.t, err)
	return cc, ctx
}

func grpcCode(err error) int { return aserr.CodeOf(grpcx.FromStatus(err)) }

func onGRPC(f func(ctx context.Context, e *env, cc *grpc.ClientConn) error) call {
	return func(_ context.Context, e *env, r role) int {
		cc, tctx := e.grpcConn(r)
		defer cc.Close()
		ctx, cancel := context.WithTimeout(tctx, 10*time.Second)
		defer cancel()
		return grpcCode(f(ctx, e, cc))
	}
}

// firstEvent opens a stream and reads its first message (the snapshot).
func firstEvent[T any](s interface{ Recv() (T, error) }, err error) error {
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

var fileSeq atomic.Int64

// freshFile pushes a new file for a call that deletes or rolls back.
func (e *env) freshFile() config.Key {
	k := echoKey
	k.File = fmt.Sprintf("tmp-%d.toml", fileSeq.Add(1))
	for _, c := range []string{"x=1\n", "x=2\n"} {
		_, err := e.center.Push(context.Background(), k, []byte(c), "", "")
		must(e.t, err)
	}
	return k
}

func pbKey(k config.Key) *polarispb.ConfigKey {
	return &polarispb.ConfigKey{Project: k.Project, Group: k.Group, Service: k.Service, Version: k.Version, File: k.File}
}

// httpCall is an admin API call as role r.
func (e *env) httpCall(r role, method, path string, body any) (int, []byte) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.httpBase+path, rd)
	must(e.t, err)
	if s := e.secret(r); s != "" {
		req.Header.Set("Authorization", "Bearer "+s)
	}
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return 0, b
	}
	var eb adminapi.ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		e.t.Fatalf("%s %s: status %d, body %s", method, path, resp.StatusCode, b)
	}
	return eb.Error.Code, b
}

func onHTTP(method string, path func(e *env) string, body any) call {
	return func(_ context.Context, e *env, r role) int {
		code, _ := e.httpCall(r, method, path(e), body)
		return code
	}
}

func filePath(k config.Key) string {
	return "/api/v1/config/files/" + k.String()
}

// browser is a console session of role r (none for anonymous and bad tokens).
type browser struct {
	c    *http.Client
	base string
	csrf string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (e *env) browser(r role) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, base: e.httpBase}
	if s := e.secret(r); s != "" {
		resp, err := b.c.PostForm(e.httpBase+"/login", url.Values{"token": {s}, "next": {"/ui/"}})
		must(e.t, err)
		resp.Body.Close()
		_, page := b.do(e.t, "GET", "/ui/", nil)
		if m := csrfRE.FindStringSubmatch(page); m != nil {
			b.csrf = m[1]
		}
	}
	return b
}

// do makes a console request and returns the code of its answer: 0 for a page or a
// redirect after a change, 10401 for the login redirect, the X-Asf-Code of an error page.
func (b *browser) do(t *testing.T, method, path string, form url.Values) (int, string) {
	var resp *http.Response
	var err error
	if method == "GET" {
		resp, err = b.c.Get(b.base + path)
	} else {
		form.Set("csrf", b.csrf)
		resp, err = b.c.PostForm(b.base+path, form)
	}
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login"):
		return aserr.ErrUnauthenticated.Code, ""
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusSeeOther:
		return 0, string(body)
	case resp.StatusCode == http.StatusUnauthorized:
		return aserr.ErrUnauthenticated.Code, ""
	}
	code, err := strconv.Atoi(resp.Header.Get("X-Asf-Code"))
	if err != nil {
		t.Fatalf("%s %s: status %d without X-Asf-Code: %s", method, path, resp.StatusCode, body)
	}
	return code, string(body)
}

func onConsole(method string, path func(e *env) string, form func(e *env) url.Values) call {
	return func(_ context.Context, e *env, r role) int {
		b := e.browser(r)
		var f url.Values
		if form != nil {
			f = form(e)
		}
		code, _ := b.do(e.t, method, path(e), f)
		return code
	}
}

func keyForm(k config.Key, extra ...string) url.Values {
	v := url.Values{"project": {k.Project}, "group": {k.Group}, "service": {k.Service}, "version": {k.Version}, "file": {k.File}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func keyQuery(k config.Key) string { return keyForm(k).Encode() }

func static(s string) func(*env) string { return func(*env) string { return s } }

// Expected codes per role, in the order of roles.
const (
	ok   = 0
	e401 = 10401
	e403 = 10403
)

func codes(anon, viewer, admin, webgate, loaderOwn, loaderOther, loaderHost, tool int) map[string]int {
	return map[string]int{"anonymous": anon, "bad-token": e401, "viewer": viewer, "admin": admin, "webgate": webgate,
		"loader-own": loaderOwn, "loader-other": loaderOther, "loader-host": loaderHost, "tool": tool}
}

// Rules by access class (service.Ops), with the identities of the table.
var (
	readRule   = codes(e401, ok, ok, ok, ok, ok, ok, ok)
	tokenRule  = codes(e401, ok, ok, e403, e403, e403, e403, e403)
	adminRule  = codes(e401, e403, ok, e403, e403, e403, e403, e403)
	selfRule   = codes(e401, e403, ok, e403, ok, e403, ok, e403)
	appsRule   = codes(e401, ok, ok, ok, e403, e403, e403, e403) // webgate's apps file
	sharedRule = codes(e401, ok, ok, ok, ok, ok, ok, ok)         // capability schemas
	echoRule   = codes(e401, ok, ok, e403, ok, e403, ok, e403)   // the loader's service
)

type opCase struct {
	op      service.Op
	want    map[string]int
	grpc    call
	http    call
	console call
}

func cases() []opCase {
	setAdminForm := func(e *env) url.Values { return url.Values{"addr": {ownAddr}, "weight": {"50"}} }
	return []opCase{
		{op: service.OpRegister, want: selfRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			_, err := polarispb.NewRegistryClient(cc).Register(ctx, &polarispb.RegisterRequest{Instance: &polarispb.Instance{Service: "echo", Addr: ownAddr, Kind: "provider"}})
			return err
		})},
		{op: service.OpHeartbeat, want: selfRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			_, err := polarispb.NewRegistryClient(cc).Heartbeat(ctx, &polarispb.HeartbeatRequest{Service: "echo", Addr: ownAddr, Load: &polarispb.Load{Live: 1}})
			return err
		})},
		{op: service.OpDeregister, want: selfRule, grpc: onGRPC(func(ctx context.Context, e *env, cc *grpc.ClientConn) error {
			_, err := polarispb.NewRegistryClient(cc).Deregister(ctx, &polarispb.DeregisterRequest{Service: "echo", Addr: ownAddr})
			// Register it again for the next calls.
			_, rerr := e.reg.Register(context.Background(), registry.Instance{Service: "echo", Addr: ownAddr, Kind: registry.KindProvider}, registry.Load{}, 0)
			must(e.t, rerr)
			return err
		})},
		{op: service.OpReport, want: selfRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			_, err := polarispb.NewConfigClient(cc).ReportApplied(ctx, &polarispb.ReportAppliedRequest{Key: pbKey(echoKey), Revision: 2, Caller: &polarispb.Caller{Addr: ownAddr}, Applied: true})
			return err
		})},
		{op: service.OpList, want: readRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			_, err := polarispb.NewRegistryClient(cc).List(ctx, &polarispb.ListRequest{})
			return err
		})},
		{op: service.OpWatch, want: readRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			return firstEvent(polarispb.NewRegistryClient(cc).Watch(ctx, &polarispb.WatchRequest{Service: "echo"}))
		})},
		{op: service.OpInfo, want: readRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			_, err := polarispb.NewRegistryClient(cc).Info(ctx, &polarispb.InfoRequest{})
			return err
		})},
		{op: service.OpSetAdmin, want: adminRule,
			grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
				_, err := polarispb.NewRegistryClient(cc).SetAdmin(ctx, &polarispb.SetAdminRequest{Service: "echo", Addr: ownAddr, Admin: &polarispb.Admin{Enabled: true, Weight: 50}})
				return err
			}),
			http:    onHTTP("PUT", static("/api/v1/services/echo/instances/"+ownAddr+"/admin"), map[string]any{"weight": 50}),
			console: onConsole("POST", static("/ui/services/echo/admin"), setAdminForm)},
		{op: service.OpServices, want: tokenRule, http: onHTTP("GET", static("/api/v1/services"), nil), console: onConsole("GET", static("/ui/"), nil)},
		{op: service.OpInstances, want: tokenRule, http: onHTTP("GET", static("/api/v1/services/echo/instances"), nil), console: onConsole("GET", static("/ui/services/echo"), nil)},
		{op: service.OpConsumers, want: tokenRule, http: onHTTP("GET", static("/api/v1/consumers"), nil)},
		{op: service.OpConfigGet, want: appsRule,
			grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
				_, err := polarispb.NewConfigClient(cc).Get(ctx, &polarispb.GetConfigRequest{Key: pbKey(appsKey)})
				return err
			}),
			http: onHTTP("GET", static(filePath(appsKey)), nil)},
		{op: service.OpConfigGet + " (own service)", want: echoRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			_, err := polarispb.NewConfigClient(cc).Get(ctx, &polarispb.GetConfigRequest{Key: pbKey(echoKey)})
			return err
		})},
		{op: service.OpConfigWatch, want: sharedRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			return firstEvent(polarispb.NewConfigClient(cc).Watch(ctx, &polarispb.WatchConfigRequest{Key: pbKey(schemaKey), Prefix: true}))
		})},
		{op: service.OpConfigWatch + " (apps)", want: appsRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			return firstEvent(polarispb.NewConfigClient(cc).Watch(ctx, &polarispb.WatchConfigRequest{Key: pbKey(appsKey)}))
		})},
		{op: service.OpPush, want: adminRule,
			grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
				_, err := polarispb.NewConfigClient(cc).Push(ctx, &polarispb.PushConfigRequest{Key: pbKey(echoKey), Content: []byte("a=3\n")})
				return err
			}),
			http:    onHTTP("PUT", static(filePath(echoKey)), map[string]any{"content": "a=3\n"}),
			console: onConsole("POST", static("/ui/config/push"), func(*env) url.Values { return keyForm(echoKey, "content", "a=3\n") })},
		{op: service.OpHistory, want: tokenRule,
			grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
				_, err := polarispb.NewConfigClient(cc).History(ctx, &polarispb.HistoryRequest{Key: pbKey(appsKey)})
				return err
			}),
			http:    onHTTP("GET", static(filePath(appsKey)+"/history"), nil),
			console: onConsole("GET", static("/ui/config/file?"+keyQuery(appsKey)), nil)},
		{op: service.OpRevision, want: tokenRule, http: onHTTP("GET", static(filePath(appsKey)+"/revisions/1"), nil)},
		{op: service.OpDiff, want: tokenRule, http: onHTTP("GET", static(filePath(appsKey)+"/diff?from=1&to=1"), nil),
			console: onConsole("GET", static("/ui/config/diff?"+keyQuery(appsKey)+"&from=1&to=1"), nil)},
		{op: service.OpApplied, want: tokenRule, http: onHTTP("GET", static(filePath(echoKey)+"/applied"), nil)},
		{op: service.OpFiles, want: tokenRule, http: onHTTP("GET", static("/api/v1/config/files"), nil), console: onConsole("GET", static("/ui/config"), nil)},
		{op: service.OpRollback, want: adminRule,
			grpc: onGRPC(func(ctx context.Context, e *env, cc *grpc.ClientConn) error {
				_, err := polarispb.NewConfigClient(cc).Rollback(ctx, &polarispb.RollbackRequest{Key: pbKey(e.freshFile()), Revision: 1})
				return err
			}),
			http: func(ctx context.Context, e *env, r role) int {
				code, _ := e.httpCall(r, "POST", filePath(e.freshFile())+"/rollback", map[string]any{"revision": 1})
				return code
			},
			console: onConsole("POST", static("/ui/config/rollback"), func(e *env) url.Values { return keyForm(e.freshFile(), "revision", "1") })},
		{op: service.OpDelete, want: adminRule,
			grpc: onGRPC(func(ctx context.Context, e *env, cc *grpc.ClientConn) error {
				_, err := polarispb.NewConfigClient(cc).Delete(ctx, &polarispb.DeleteConfigRequest{Key: pbKey(e.freshFile())})
				return err
			}),
			http: func(ctx context.Context, e *env, r role) int {
				code, _ := e.httpCall(r, "DELETE", filePath(e.freshFile()), nil)
				return code
			},
			console: onConsole("POST", static("/ui/config/delete"), func(e *env) url.Values { return keyForm(e.freshFile()) })},
		{op: service.OpResGet, want: echoRule,
			grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
				_, err := polarispb.NewResourcesClient(cc).Get(ctx, &polarispb.GetResourceRequest{Service: "echo", AppId: "app1", ResId: "r1"})
				return err
			}),
			http: onHTTP("GET", static("/api/v1/resources/echo/app1/r1"), nil)},
		{op: service.OpResWatch, want: echoRule, grpc: onGRPC(func(ctx context.Context, _ *env, cc *grpc.ClientConn) error {
			return firstEvent(polarispb.NewResourcesClient(cc).Watch(ctx, &polarispb.WatchResourcesRequest{Service: "echo"}))
		})},
		{op: service.OpResList, want: tokenRule, http: onHTTP("GET", static("/api/v1/resources/echo"), nil)},
		{op: service.OpResPut, want: adminRule, http: onHTTP("PUT", static("/api/v1/resources/echo/app1/r2"), []byte("data"))},
		{op: service.OpResDelete, want: adminRule, http: func(ctx context.Context, e *env, r role) int {
			_, err := e.res.Put(context.Background(), resource.Key{Service: "echo", AppID: "app1", ID: "r3"}, []byte("x"))
			must(e.t, err)
			code, _ := e.httpCall(r, "DELETE", "/api/v1/resources/echo/app1/r3", nil)
			return code
		}},
		{op: service.OpWhoami, want: tokenRule, http: onHTTP("GET", static("/api/v1/whoami"), nil)},
		{op: service.OpTokens, want: adminRule, http: onHTTP("GET", static("/api/v1/tokens"), nil), console: onConsole("GET", static("/ui/tokens"), nil)},
		{op: service.OpTokenCreate, want: adminRule, http: onHTTP("POST", static("/api/v1/tokens"), map[string]any{"name": "x", "role": "viewer"}),
			console: onConsole("POST", static("/ui/tokens"), func(*env) url.Values { return url.Values{"name": {"y"}, "role": {"viewer"}} })},
		{op: service.OpTokenRevoke, want: adminRule,
			http: func(ctx context.Context, e *env, r role) int {
				_, tok, err := e.tokens.Create("gone", auth.RoleViewer)
				must(e.t, err)
				code, _ := e.httpCall(r, "DELETE", "/api/v1/tokens/"+tok.ID, nil)
				return code
			},
			console: onConsole("POST", static("/ui/tokens/revoke"), func(e *env) url.Values {
				_, tok, err := e.tokens.Create("gone", auth.RoleViewer)
				must(e.t, err)
				return url.Values{"id": {tok.ID}}
			})},
	}
}

// TestEveryOperationEveryEntranceEveryRole: one table of expected codes per operation
// and caller; every entrance that offers the operation (gRPC over mutual TLS, the admin
// API, the console) answers it with the same code.
func TestEveryOperationEveryEntranceEveryRole(t *testing.T) {
	e := newEnv(t, false)
	seen := map[service.Op]bool{}
	for _, tc := range cases() {
		seen[service.Op(strings.SplitN(string(tc.op), " ", 2)[0])] = true
		for _, r := range roles {
			want := tc.want[r.name]
			entrances := []struct {
				name string
				c    call
			}{{"grpc", tc.grpc}, {"http", tc.http}, {"console", tc.console}}
			for _, en := range entrances {
				if en.c == nil || (r.id != nil && en.name != "grpc") {
					continue // identities exist on gRPC only
				}
				if got := en.c(context.Background(), e, r); got != want {
					t.Errorf("%s via %s as %s: code %d, want %d", tc.op, en.name, r.name, got, want)
				}
			}
		}
	}
	for op := range service.Ops {
		if !seen[op] {
			t.Errorf("operation %s is not in the table", op)
		}
	}
}

// TestInsecurePlaintext: without TLS and with insecure set, callers without credentials
// are trusted internal services, except for admin operations, which still need an admin
// token (10401 without one).
func TestInsecurePlaintext(t *testing.T) {
	e := newEnv(t, true)
	anon := role{name: "anonymous"}
	for _, tc := range cases() {
		if tc.grpc == nil {
			continue
		}
		want := ok
		if service.Ops[service.Op(strings.SplitN(string(tc.op), " ", 2)[0])] == service.AccessAdmin {
			want = e401
		}
		if got := tc.grpc(context.Background(), e, anon); got != want {
			t.Errorf("%s over plaintext without credentials: code %d, want %d", tc.op, got, want)
		}
		if got := tc.grpc(context.Background(), e, role{name: "admin", token: "admin"}); got != ok {
			t.Errorf("%s over plaintext with an admin token: code %d", tc.op, got)
		}
	}
	// Without insecure, the same plaintext caller is refused.
	svc := service.New(service.Options{Registry: e.reg, Center: e.center})
	if _, err := svc.Authorize(context.Background(), service.Caller{Plaintext: true}, service.ListRequest{}); aserr.CodeOf(err) != e401 {
		t.Fatalf("plaintext without insecure: %v", err)
	}
}

// TestViewersSeeSecretsRedacted: the apps file's api_secret is "***" for a viewer on
// every entrance, and in the clear for an admin and for webgate.
func TestViewersSeeSecretsRedacted(t *testing.T) {
	e := newEnv(t, false)
	viewer, admin := roles[2], roles[3]
	get := func(r role) string {
		cc, ctx := e.grpcConn(r)
		defer cc.Close()
		f, err := polarispb.NewConfigClient(cc).Get(ctx, &polarispb.GetConfigRequest{Key: pbKey(appsKey)})
		must(t, err)
		return string(f.GetContent())
	}
	if s := get(viewer); strings.Contains(s, "s3cr3t") || !strings.Contains(s, `"api_secret": "***"`) || !strings.Contains(s, `"k1"`) {
		t.Fatalf("viewer over gRPC: %s", s)
	}
	if s := get(admin); !strings.Contains(s, "s3cr3t-value") {
		t.Fatalf("admin over gRPC: %s", s)
	}
	if s := get(roles[4]); !strings.Contains(s, "s3cr3t-value") {
		t.Fatalf("webgate over gRPC: %s", s)
	}
	for _, p := range []string{filePath(appsKey), filePath(appsKey) + "/history", filePath(appsKey) + "/revisions/1", filePath(appsKey) + "/diff?from=1&to=1"} {
		_, b := e.httpCall(viewer, "GET", p, nil)
		if bytes.Contains(b, []byte("s3cr3t")) || !bytes.Contains(b, []byte("***")) {
			t.Errorf("viewer GET %s: %s", p, b)
		}
		if _, b := e.httpCall(admin, "GET", p, nil); !bytes.Contains(b, []byte("s3cr3t-value")) {
			t.Errorf("admin GET %s: %s", p, b)
		}
	}
	b := e.browser(viewer)
	if _, page := b.do(t, "GET", "/ui/config/file?"+keyQuery(appsKey), nil); strings.Contains(page, "s3cr3t") || !strings.Contains(page, "***") {
		t.Errorf("viewer console file page shows the secret")
	}
	// A watch opened by a viewer is redacted too.
	cc, ctx := e.grpcConn(viewer)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := polarispb.NewConfigClient(cc).Watch(ctx, &polarispb.WatchConfigRequest{Key: pbKey(appsKey)})
	must(t, err)
	ev, err := w.Recv()
	must(t, err)
	if len(ev.GetFiles()) != 1 || bytes.Contains(ev.GetFiles()[0].GetContent(), []byte("s3cr3t")) {
		t.Fatalf("viewer watch: %v", ev)
	}
}

// TestAdminRulesSameOnEveryEntrance: gRPC SetAdmin validates the weight as the admin API
// does; gRPC Push checks the comment and gray group; a rollback to a pruned revision is
// 10410 on both.
func TestAdminRulesSameOnEveryEntrance(t *testing.T) {
	e := newEnv(t, false)
	admin := roles[3]
	cc, ctx := e.grpcConn(admin)
	defer cc.Close()
	rc, cfc := polarispb.NewRegistryClient(cc), polarispb.NewConfigClient(cc)
	_, err := rc.SetAdmin(ctx, &polarispb.SetAdminRequest{Service: "echo", Addr: ownAddr, Admin: &polarispb.Admin{Enabled: true, Weight: 20000}})
	if grpcCode(err) != 10107 {
		t.Fatalf("gRPC weight 20000: %v", err)
	}
	if code, _ := e.httpCall(admin, "PUT", "/api/v1/services/echo/instances/"+ownAddr+"/admin", map[string]any{"weight": 20000}); code != 10107 {
		t.Fatalf("HTTP weight 20000: %d", code)
	}
	_, err = cfc.Push(ctx, &polarispb.PushConfigRequest{Key: pbKey(echoKey), Content: []byte("x"), GrayGroup: "two words"})
	if grpcCode(err) != 10107 {
		t.Fatalf("gRPC push with a bad gray group: %v", err)
	}
	_, err = cfc.Push(ctx, &polarispb.PushConfigRequest{Key: pbKey(echoKey), Content: []byte("x"), Comment: strings.Repeat("c", 2000)})
	if grpcCode(err) != 10107 {
		t.Fatalf("gRPC push with a long comment: %v", err)
	}
	// History 3: after five more pushes revision 1 is pruned.
	for i := range 5 {
		_, err := cfc.Push(ctx, &polarispb.PushConfigRequest{Key: pbKey(echoKey), Content: fmt.Appendf(nil, "a=%d\n", 10+i)})
		must(t, err)
	}
	h, err := cfc.History(ctx, &polarispb.HistoryRequest{Key: pbKey(echoKey)})
	must(t, err)
	if len(h.GetRevisions()) != 3 {
		t.Fatalf("history keeps %d revisions, want 3", len(h.GetRevisions()))
	}
	_, err = cfc.Rollback(ctx, &polarispb.RollbackRequest{Key: pbKey(echoKey), Revision: 1})
	if grpcCode(err) != 10410 || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("gRPC rollback to a pruned revision: %v", err)
	}
	code, body := e.httpCall(admin, "POST", filePath(echoKey)+"/rollback", map[string]any{"revision": 1})
	if code != 10410 || !bytes.Contains(body, []byte(`"status": 410`)) {
		t.Fatalf("HTTP rollback to a pruned revision: %d %s", code, body)
	}
	if code, _ := e.browser(admin).do(t, "POST", "/ui/config/rollback", keyForm(echoKey, "revision", "1")); code != 10410 {
		t.Fatalf("console rollback to a pruned revision: %d", code)
	}
}
