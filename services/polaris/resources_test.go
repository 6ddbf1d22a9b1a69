package polaris_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/libs/grpcx"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/polaris"
	"github.com/athenaserving/asf/services/polaris/resource"
)

func TestResourcesAdminAPIAndGRPC(t *testing.T) {
	srv := start(t, func(c *polaris.Config) { c.ResourceMax = 1024 })
	admin := apiClient{t: t, base: "http://" + srv.ConsoleAddr(), tok: testAdminToken}
	cl := polarispb.NewResourcesClient(dial(t, srv.GRPCAddr()))
	ctx := t.Context()

	// Watch first: the snapshot is empty, then every change comes.
	ws, err := cl.Watch(ctx, &polarispb.WatchResourcesRequest{Service: "iat"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ws.Recv()
	if err != nil || ev.GetType() != polarispb.ResourceEvent_TYPE_SNAPSHOT || len(ev.GetResources()) != 0 {
		t.Fatalf("first watch event = %v, %v", ev, err)
	}

	var m resource.Meta
	if st := admin.do("PUT", "/api/v1/resources/iat/app1/hw", "hot words", &m); st != http.StatusOK || m.Revision != 1 || m.Size != 9 {
		t.Fatalf("put = %d %+v", st, m)
	}
	ev, err = ws.Recv()
	if err != nil || ev.GetType() != polarispb.ResourceEvent_TYPE_UPDATED || ev.GetResources()[0].GetResId() != "hw" || ev.GetResources()[0].GetRevision() != 1 {
		t.Fatalf("event after put = %v, %v", ev, err)
	}
	admin.do("PUT", "/api/v1/resources/iat/app2/hw", "other app", nil)
	admin.do("PUT", "/api/v1/resources/tts/app1/hw", "other service", nil) // not on this watch
	if ev, _ = ws.Recv(); ev.GetResources()[0].GetAppId() != "app2" {
		t.Fatalf("event = %v, want app2's upload", ev)
	}

	var view struct {
		resource.Meta
		Data []byte `json:"data"`
	}
	if st := admin.do("GET", "/api/v1/resources/iat/app1/hw", nil, &view); st != 200 || string(view.Data) != "hot words" || view.AppID != "app1" {
		t.Fatalf("get = %d %+v", st, view)
	}
	var list struct {
		Resources []resource.Meta `json:"resources"`
		MaxBytes  int64           `json:"max_bytes"`
	}
	admin.do("GET", "/api/v1/resources/iat", nil, &list)
	if len(list.Resources) != 2 || list.MaxBytes != 1024 {
		t.Fatalf("list iat = %+v", list)
	}
	admin.do("GET", "/api/v1/resources/iat/app2", nil, &list)
	if len(list.Resources) != 1 || list.Resources[0].AppID != "app2" {
		t.Fatalf("list iat/app2 = %+v", list)
	}

	r, err := cl.Get(ctx, &polarispb.GetResourceRequest{Service: "iat", AppId: "app1", ResId: "hw"})
	if err != nil || string(r.GetData()) != "hot words" || r.GetMeta().GetRevision() != 1 {
		t.Fatalf("grpc get = %v, %v", r, err)
	}

	// Errors: too large, bad id, unknown, viewer token, no token.
	admin.wantErr("PUT", "/api/v1/resources/iat/app1/big", strings.Repeat("x", 1025), 413, 10413)
	admin.wantErr("PUT", "/api/v1/resources/iat/app1/bad%20id", "x", 400, 10107)
	admin.wantErr("GET", "/api/v1/resources/iat/app1/nope", nil, 404, 10166)
	admin.wantErr("DELETE", "/api/v1/resources/iat/app1/nope", nil, 404, 10166)
	(apiClient{t: t, base: admin.base}).wantErr("PUT", "/api/v1/resources/iat/app1/hw", "x", 401, 10401)
	if _, err := cl.Get(ctx, &polarispb.GetResourceRequest{Service: "iat", AppId: "app1", ResId: "nope"}); aserr.CodeOf(grpcx.FromStatus(err)) != 10166 {
		t.Fatalf("grpc get of unknown: %v, want 10166", err)
	}

	if st := admin.do("DELETE", "/api/v1/resources/iat/app1/hw", nil, nil); st != 200 {
		t.Fatalf("delete = %d", st)
	}
	ev, err = ws.Recv()
	if err != nil || ev.GetType() != polarispb.ResourceEvent_TYPE_REMOVED || ev.GetResources()[0].GetAppId() != "app1" {
		t.Fatalf("event after delete = %v, %v", ev, err)
	}
	if _, err := cl.Get(ctx, &polarispb.GetResourceRequest{Service: "iat", AppId: "app1", ResId: "hw"}); aserr.CodeOf(grpcx.FromStatus(err)) != 10166 {
		t.Fatalf("grpc get after delete: %v, want 10166", err)
	}

	// A new watcher's snapshot lists what exists.
	ws2, err := cl.Watch(ctx, &polarispb.WatchResourcesRequest{Service: "iat"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := ws2.Recv(); err != nil || len(ev.GetResources()) != 1 || ev.GetResources()[0].GetAppId() != "app2" {
		t.Fatalf("snapshot = %v, %v", ev, err)
	}
}
