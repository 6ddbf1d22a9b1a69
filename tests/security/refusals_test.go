package security

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/athenaserving/asf/libs/grpcx"
	"github.com/athenaserving/asf/libs/natsbus"
	atompb "github.com/athenaserving/asf/libs/proto/atom/v1"
	lbpb "github.com/athenaserving/asf/libs/proto/lb/v1"
	loaderpb "github.com/athenaserving/asf/libs/proto/loader/v1"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/libs/tlsx"
	"github.com/athenaserving/asf/services/polaris/service"
	"github.com/athenaserving/asf/tests/suitetest"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// A stranger is an identity of the suite's CA at a host where nothing of the suite runs:
// polaris lets an identity act only for instances at its own host.
const strangerHost = "10.9.9.9"

// wrongCall is one call that a certificate of the wrong service or instance makes to
// an RPC; it must be refused with 10403.
type wrongCall struct {
	id  grpcx.Identity
	req proto.Message // nil: an empty request
	why string
}

// wrongCalls lists, for every RPC, the calls with a certificate of the CA that must be
// refused. An RPC open to every internal caller says so with an empty list and a reason
// in openRPCs. TestRefusals fails for an RPC in neither, so a new RPC needs a decision.
func wrongCalls() map[string][]wrongCall {
	id := func(svc string) grpcx.Identity { return grpcx.Identity{Service: svc, Instance: suitetest.PKIInstance} }
	stranger := func(svc string) grpcx.Identity { return grpcx.Identity{Service: svc, Instance: strangerHost} }
	other := strangerHost + ":5090" // an instance no suite identity covers
	appsKey := &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "webgate", Version: "v1", File: "apps.json"}
	echoKey := &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: "echo.toml"}
	return map[string][]wrongCall{
		"/asf.atom.v1.Atom/Call": {
			{id("loader"), &atompb.Frame{Capability: "echo", Status: 3}, "a loader calling Atom.Call"},
			{id("lbclient"), nil, "an lbclient calling Atom.Call"},
			{id("polaris"), nil, "polaris calling Atom.Call"},
		},
		"/asf.atom.v1.Atom/Stream":     {{id("loader"), nil, "a loader opening an Atom session"}, {id("atom"), nil, "an atom calling another atom"}},
		"/asf.atom.v1.Atom/CallStream": {{id("loader"), &atompb.CallRequest{Id: 1, Frame: &atompb.Frame{Capability: "echo", Status: 3}}, "a loader calling Atom.Call on a stream"}, {id("atom"), nil, "an atom calling another atom on a stream"}},
		"/asf.lb.v1.Lb/Pick":           {{id("webgate"), &lbpb.PickRequest{Service: "echo", N: 1}, "webgate picking loaders"}, {id("loader"), nil, "a loader picking"}},
		"/asf.lb.v1.Lb/PickStream":     {{id("webgate"), &lbpb.PickStreamRequest{Id: 1, Pick: &lbpb.PickRequest{Service: "echo"}}, "webgate picking on a stream"}},
		"/asf.lb.v1.Lb/WatchDropped":   {{id("webgate"), &lbpb.WatchDroppedRequest{}, "webgate watching dropped loaders"}, {id("loader"), nil, "a loader watching dropped loaders"}},
		"/asf.lb.v1.Lb/Lease":          {{id("webgate"), &lbpb.LeaseRequest{Service: "echo", Count: 4}, "webgate leasing picks"}, {id("loader"), nil, "a loader leasing picks"}},
		"/asf.loader.v1.Loader/Once": {
			{id("webgate"), &loaderpb.LoaderInput{ServiceId: "echo"}, "webgate calling a loader directly"},
			{id("lbclient"), nil, "lbclient calling a loader"},
			{id("loader"), nil, "a loader calling another loader"},
		},
		"/asf.loader.v1.Loader/Session":    {{id("webgate"), nil, "webgate opening a loader session"}},
		"/asf.loader.v1.Loader/OnceStream": {{id("webgate"), &loaderpb.OnceCall{Id: 1, Input: &loaderpb.LoaderInput{ServiceId: "echo"}}, "webgate calling a loader directly on a stream"}},
		"/asf.polaris.v1.Registry/Register": {
			{id("loader"), &polarispb.RegisterRequest{Instance: &polarispb.Instance{Service: "echo", Addr: other, Kind: "provider"}}, "a loader registering another host's instance"},
			{stranger("loader"), &polarispb.RegisterRequest{Instance: &polarispb.Instance{Service: "echo", Addr: "127.0.0.1:5090", Kind: "provider"}}, "a loader of another host registering here"},
		},
		"/asf.polaris.v1.Registry/Heartbeat":  {{id("loader"), &polarispb.HeartbeatRequest{Service: "echo", Addr: other}, "a loader heartbeating another instance"}},
		"/asf.polaris.v1.Registry/Deregister": {{id("lbclient"), &polarispb.DeregisterRequest{Service: "echo", Addr: other}, "deregistering another instance"}},
		"/asf.polaris.v1.Registry/SetAdmin": {{id("atom"), &polarispb.SetAdminRequest{Service: "echo", Addr: "127.0.0.1:1", Admin: &polarispb.Admin{Enabled: false, Weight: 1}},
			"an internal service changing an admin state without an admin token"}},
		"/asf.polaris.v1.Config/Get":   {{id("lbclient"), &polarispb.GetConfigRequest{Key: appsKey}, "lbclient reading webgate's apps (api_secrets)"}, {id("atom"), &polarispb.GetConfigRequest{Key: appsKey}, "atom reading webgate's apps"}},
		"/asf.polaris.v1.Config/Watch": {{id("loader"), &polarispb.WatchConfigRequest{Key: appsKey}, "a loader watching webgate's apps"}},
		"/asf.polaris.v1.Config/Push": {
			{id("lbclient"), &polarispb.PushConfigRequest{Key: echoKey, Content: []byte("x")}, "lbclient pushing config"},
			{id("webgate"), &polarispb.PushConfigRequest{Key: appsKey, Content: []byte("[]")}, "webgate pushing its own apps without an admin token"},
		},
		"/asf.polaris.v1.Config/History":       {{id("webgate"), &polarispb.HistoryRequest{Key: appsKey}, "an internal service reading history (operators only)"}},
		"/asf.polaris.v1.Config/Rollback":      {{id("atom"), &polarispb.RollbackRequest{Key: echoKey, Revision: 1}, "an internal service rolling back"}},
		"/asf.polaris.v1.Config/Delete":        {{id("loader"), &polarispb.DeleteConfigRequest{Key: echoKey}, "an internal service deleting config"}},
		"/asf.polaris.v1.Config/ReportApplied": {{id("loader"), &polarispb.ReportAppliedRequest{Key: echoKey, Revision: 1, Caller: &polarispb.Caller{Addr: other}}, "reporting for another instance"}},
		"/asf.polaris.v1.Resources/Get":        {{stranger("loader"), &polarispb.GetResourceRequest{Service: "echo", AppId: "app1", ResId: "res1"}, "a loader not registered for echo reading its resources"}},
		"/asf.polaris.v1.Resources/Watch":      {{stranger("loader"), &polarispb.WatchResourcesRequest{Service: "echo"}, "a loader not registered for echo watching its resources"}},
	}
}

// openRPCs are the RPCs every internal service may call (docs/operations.md, "Who may
// do what": registry list, watch, info).
var openRPCs = map[string]string{
	"/asf.polaris.v1.Registry/List":  "registry reads are open to every internal service",
	"/asf.polaris.v1.Registry/Watch": "registry reads are open to every internal service",
	"/asf.polaris.v1.Registry/Info":  "registry reads are open to every internal service",
}

// adminRPCs are the operator changes over gRPC: a viewer token is refused (10403), an
// unknown token too (10401), whatever the certificate.
var adminRPCs = map[string]proto.Message{
	"/asf.polaris.v1.Registry/SetAdmin": &polarispb.SetAdminRequest{Service: "echo", Addr: "127.0.0.1:1", Admin: &polarispb.Admin{Enabled: true, Weight: 5}},
	"/asf.polaris.v1.Config/Push":       &polarispb.PushConfigRequest{Key: &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: "viewer.toml"}, Content: []byte("x")},
	"/asf.polaris.v1.Config/Rollback":   &polarispb.RollbackRequest{Key: &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: "viewer.toml"}, Revision: 1},
	"/asf.polaris.v1.Config/Delete":     &polarispb.DeleteConfigRequest{Key: &polarispb.ConfigKey{Project: "asf", Group: "default", Service: "echo", Version: "v1", File: "viewer.toml"}},
	// An instance its certificate (asfctl at strangerHost) does not cover: only the token could allow it.
	"/asf.polaris.v1.Registry/Register": &polarispb.RegisterRequest{Instance: &polarispb.Instance{Service: "echo", Addr: "10.8.8.8:1", Kind: "provider"}},
}

// TestRefusals calls every RPC, admin API route, console route, NATS and webgate's
// public routes without credentials or with the wrong ones, and checks each refusal
// and its code.
func TestRefusals(t *testing.T) {
	s := suitetest.Start(t, suitetest.Options{Loaders: 1})
	ms := methods(t)
	viewer := createToken(t, s, "security-viewer", "viewer")

	t.Run("grpc/no-credentials", func(t *testing.T) {
		plain := tlsx.DialOption(nil, "")
		noCert := noClientCert()
		for _, m := range ms {
			addr := serverOf(t, s, m.Service)
			// Plaintext, TLS without a client certificate and a certificate of a
			// foreign CA all end in the handshake: the handler never runs.
			for name, opt := range map[string]grpc.DialOption{"plaintext": plain, "tls-no-client-cert": noCert, "foreign-ca": foreignCA(t, "webgate")} {
				err := invoke(t, dial(t, addr, opt), m, nil, suitetest.AdminToken) // not even with an admin token
				if err == nil || grpcCode(err) != codes.Unavailable || aseCode(err) != 0 {
					t.Errorf("%s %s: %v, want a refused handshake (Unavailable)", m.Full, name, err)
				}
			}
		}
	})

	t.Run("grpc/wrong-certificate", func(t *testing.T) {
		table := wrongCalls()
		n := 0
		for _, m := range ms {
			calls, listed := table[m.Full]
			if _, open := openRPCs[m.Full]; open {
				// Open to every internal identity: a stranger's certificate of the CA is answered.
				if err := invoke(t, dial(t, serverOf(t, s, m.Service), certOf(t, s, grpcx.Identity{Service: "webgate", Instance: strangerHost}, "")), m, openReq(m), ""); err != nil {
					t.Errorf("%s: open RPC refused an internal caller: %v", m.Full, err)
				}
				continue
			}
			if !listed || len(calls) == 0 {
				t.Errorf("%s has no wrong-certificate case: add it to wrongCalls (or openRPCs with the reason)", m.Full)
				continue
			}
			for _, c := range calls {
				err := invoke(t, dial(t, serverOf(t, s, m.Service), certOf(t, s, c.id, "")), m, c.req, "")
				wantRefused(t, m.Full+" as "+c.id.String()+" ("+c.why+")", err, codes.PermissionDenied, 10403)
				n++
			}
		}
		t.Logf("%d RPCs, %d wrong-certificate calls refused", len(ms), n)
	})

	t.Run("grpc/viewer-token", func(t *testing.T) {
		byName := map[string]method{}
		for _, m := range ms {
			byName[m.Full] = m
		}
		for full, req := range adminRPCs {
			m, ok := byName[full]
			if !ok {
				t.Fatalf("%s is not an RPC any more", full)
			}
			cc := dial(t, s.Polaris.GRPCAddr(), certOf(t, s, grpcx.Identity{Service: "asfctl", Instance: strangerHost}, "polaris"))
			wantRefused(t, full+" with a viewer token", invoke(t, cc, m, req, viewer), codes.PermissionDenied, 10403)
			wantRefused(t, full+" with an unknown token", invoke(t, cc, m, req, "plr_not-a-token"), codes.Unauthenticated, 10401)
		}
		// Every AccessAdmin operation that has an RPC is in adminRPCs.
		for full := range byName {
			if op, ok := rpcOps[full]; ok && service.Ops[op] == service.AccessAdmin {
				if _, ok := adminRPCs[full]; !ok {
					t.Errorf("%s is an admin operation without a viewer-token case in adminRPCs", full)
				}
			}
		}
	})

	t.Run("admin-api", func(t *testing.T) {
		base := "http://" + s.Polaris.ConsoleAddr()
		routes := sourceRoutes(t, "../../services/polaris/adminapi", true)
		for _, r := range routes {
			method := r.Method
			if method == "" {
				method = http.MethodGet
			}
			path := samplePath(r.Path)
			if r.Path == "/api/" {
				path = "/api/v1/no-such-route"
			}
			u := base + path
			what := method + " " + r.Path
			body := []byte(`{}`)
			st, h, b := httpDo(t, nil, method, u, "", body)
			wantAPIError(t, what+" without a token", st, h, b, http.StatusUnauthorized, 10401)
			st, h, b = httpDo(t, nil, method, u, "plr_unknown-token", body)
			wantAPIError(t, what+" with an unknown token", st, h, b, http.StatusUnauthorized, 10401)
			acc, ok := service.Ops[service.Op(opValue(t, r.Op))]
			if !ok {
				t.Errorf("%s: operation %s has no access rule", what, r.Op)
				continue
			}
			st, h, b = httpDo(t, nil, method, u, viewer, body)
			if acc == service.AccessAdmin || acc == service.AccessSelf {
				wantAPIError(t, what+" with a viewer token", st, h, b, http.StatusForbidden, 10403)
			} else if st == http.StatusUnauthorized || st == http.StatusForbidden {
				t.Errorf("%s: a viewer read refused: HTTP %d %s", what, st, b)
			}
		}
		t.Logf("%d admin API routes", len(routes))
	})

	t.Run("console", func(t *testing.T) {
		base := "http://" + s.Polaris.ConsoleAddr()
		routes := sourceRoutes(t, "../../services/polaris/console", false)
		vc, csrf := consoleSession(t, s, viewer)
		public := map[string]bool{"GET /{$}": true, "GET /login": true, "POST /login": true}
		for _, r := range routes {
			key := r.Method + " " + r.Path
			if !r.Auth {
				if !public[key] {
					t.Errorf("console route %s is served without a session and is not a known public route", key)
				}
				continue
			}
			u := base + samplePath(r.Path)
			st, h, b := httpDo(t, nil, r.Method, u, "", []byte("csrf=x"))
			switch {
			case r.Post && st != http.StatusUnauthorized:
				t.Errorf("%s without a session: HTTP %d, want 401", key, st)
			case !r.Post && (st != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login")):
				t.Errorf("%s without a session: HTTP %d %s, want a redirect to /login", key, st, b)
			}
			// A bearer token is not a console session.
			if st2, _, _ := httpDo(t, nil, r.Method, u, suitetest.AdminToken, []byte("csrf=x")); st2 != st {
				t.Errorf("%s with only a bearer token: HTTP %d, want %d as without", key, st2, st)
			}
			if !r.Post || r.Path == "/logout" {
				continue
			}
			// A viewer's session, with its valid CSRF token, may not change anything.
			form := url.Values{"csrf": {csrf}, "project": {"asf"}, "group": {"default"}, "service": {"echo"}, "version": {"v1"},
				"file": {"viewer.toml"}, "content": {"x"}, "revision": {"1"}, "addr": {"127.0.0.1:1"}, "enabled": {"false"},
				"name": {"v2"}, "role": {"admin"}, "id": {"nope"}}
			st, h, b = httpDo(t, vc, http.MethodPost, u, "", []byte(form.Encode()))
			if st != http.StatusForbidden || h.Get("X-Asf-Code") != "10403" {
				t.Errorf("%s as a viewer: HTTP %d (X-Asf-Code %q), want 403 with 10403: %s", key, st, h.Get("X-Asf-Code"), b)
			}
			// And a stale CSRF token is refused before anything runs.
			form.Set("csrf", "stale")
			if st, _, _ := httpDo(t, vc, http.MethodPost, u, "", []byte(form.Encode())); st != http.StatusForbidden {
				t.Errorf("%s with a stale CSRF token: HTTP %d, want 403", key, st)
			}
		}
		t.Logf("%d console routes", len(routes))
	})

	t.Run("nats", func(t *testing.T) {
		u := s.Polaris.NATSURL()
		// Plain TCP without credentials: the server requires TLS.
		if nc, err := nats.Connect(strings.Replace(u, "tls://", "nats://", 1), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Error("NATS accepted a plaintext client without credentials")
		}
		b := tlsx.MustLoad(s.TLS("asfctl"), zerolog.Nop())
		tlsOpt := natsbus.TLSOption(b)
		// A certificate of the CA but no nkey.
		if nc, err := nats.Connect(u, append(tlsOpt, nats.MaxReconnects(0))...); err == nil {
			nc.Close()
			t.Error("NATS accepted a TLS client without an nkey")
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("NATS without an nkey: %v, want an authorization error", err)
		}
		// An nkey unknown to the server.
		k, err := natsbus.NewKey("loader")
		if err != nil {
			t.Fatal(err)
		}
		ko, err := natsbus.KeyOption(k)
		if err != nil {
			t.Fatal(err)
		}
		if nc, err := nats.Connect(u, append(tlsOpt, ko, nats.MaxReconnects(0))...); err == nil {
			nc.Close()
			t.Error("NATS accepted an unknown nkey")
		}
		// lbclient's own key without TLS: refused at the TLS requirement.
		seed, err := nats.NkeyOptionFromSeed(s.NATSDir + "/" + natsbus.UserLBClient + natsbus.SeedExt)
		if err != nil {
			t.Fatal(err)
		}
		if nc, err := nats.Connect(strings.Replace(u, "tls://", "nats://", 1), seed, nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Error("NATS accepted lbclient's key over plaintext")
		}
		// lbclient's key over TLS connects and may not publish registry events.
		errs := make(chan error, 4)
		nc, err := nats.Connect(u, append(tlsOpt, seed, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))...)
		if err != nil {
			t.Fatalf("lbclient's key: %v", err)
		}
		defer nc.Close()
		_ = nc.Publish(natsbus.RegistrySubject("asf", "echo"), []byte("forged"))
		_ = nc.Flush()
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permission") {
				t.Errorf("forged publish: %v, want a permission violation", err)
			}
		case <-time.After(3 * time.Second):
			t.Error("lbclient's key published a registry event without a permission violation")
		}
	})

	t.Run("webgate-public", func(t *testing.T) {
		webgatePublic(t, s)
	})
}

// rpcOps maps the polaris RPCs to their service operations.
var rpcOps = map[string]service.Op{
	"/asf.polaris.v1.Registry/Register": service.OpRegister, "/asf.polaris.v1.Registry/Heartbeat": service.OpHeartbeat,
	"/asf.polaris.v1.Registry/Deregister": service.OpDeregister, "/asf.polaris.v1.Registry/List": service.OpList,
	"/asf.polaris.v1.Registry/Watch": service.OpWatch, "/asf.polaris.v1.Registry/SetAdmin": service.OpSetAdmin,
	"/asf.polaris.v1.Registry/Info": service.OpInfo, "/asf.polaris.v1.Config/Get": service.OpConfigGet,
	"/asf.polaris.v1.Config/Watch": service.OpConfigWatch, "/asf.polaris.v1.Config/Push": service.OpPush,
	"/asf.polaris.v1.Config/History": service.OpHistory, "/asf.polaris.v1.Config/Rollback": service.OpRollback,
	"/asf.polaris.v1.Config/Delete": service.OpDelete, "/asf.polaris.v1.Config/ReportApplied": service.OpReport,
	"/asf.polaris.v1.Resources/Get": service.OpResGet, "/asf.polaris.v1.Resources/Watch": service.OpResWatch,
}

// openReq is a request an open RPC answers.
func openReq(m method) proto.Message {
	switch m.Full {
	case "/asf.polaris.v1.Registry/List", "/asf.polaris.v1.Registry/Watch":
		return &polarispb.ListRequest{Service: "echo"}
	}
	return nil
}

// opValue is the value of a service.Op constant named in the admin API's source.
func opValue(t *testing.T, name string) string {
	t.Helper()
	ops := map[string]service.Op{
		"OpRegister": service.OpRegister, "OpHeartbeat": service.OpHeartbeat, "OpDeregister": service.OpDeregister,
		"OpList": service.OpList, "OpWatch": service.OpWatch, "OpInfo": service.OpInfo, "OpSetAdmin": service.OpSetAdmin,
		"OpServices": service.OpServices, "OpInstances": service.OpInstances, "OpConsumers": service.OpConsumers,
		"OpConfigGet": service.OpConfigGet, "OpConfigWatch": service.OpConfigWatch, "OpPush": service.OpPush,
		"OpHistory": service.OpHistory, "OpRevision": service.OpRevision, "OpDiff": service.OpDiff,
		"OpRollback": service.OpRollback, "OpDelete": service.OpDelete, "OpApplied": service.OpApplied,
		"OpReport": service.OpReport, "OpFiles": service.OpFiles, "OpResGet": service.OpResGet,
		"OpResWatch": service.OpResWatch, "OpResList": service.OpResList, "OpResPut": service.OpResPut,
		"OpResDelete": service.OpResDelete, "OpWhoami": service.OpWhoami, "OpTokens": service.OpTokens,
		"OpTokenCreate": service.OpTokenCreate, "OpTokenRevoke": service.OpTokenRevoke,
	}
	op, ok := ops[name]
	if !ok {
		t.Fatalf("operation constant %s unknown to the suite: add it to opValue", name)
	}
	return string(op)
}
