package layering

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func p(path, name string, imports ...string) Package {
	return Package{ImportPath: Prefix + path, Name: name, Imports: imports}
}

func TestRulesOnMadeUpPackages(t *testing.T) {
	pkgs := []Package{
		p("libs/good", "good", "fmt", Prefix+"libs/aserr"),
		p("libs/bad", "bad", Prefix+"services/atom/route"),
		p("sdk/go/ase", "ase", Prefix+"tools/suite"),
		p("services/atom/route", "route", "context", Prefix+"libs/aserr", Prefix+"services/atom/convert"),
		p("services/atom/bad", "bad", "net/http/httptest", "google.golang.org/grpc/status", "github.com/nats-io/nats.go"),
		p("services/atom/leaky", "leaky", Prefix+"services/atom/transport", Prefix+"services/atom"),
		p("services/atom/transport", "transport", "google.golang.org/grpc", Prefix+"services/atom/route"),
		p("services/atom", "atom", "net/http", Prefix+"services/atom/transport"),
		p("services/atom/cmd/atom", "main", Prefix+"services/atom"),
		p("services/atom/atomtest", "atomtest", "net/http", Prefix+"services/atom"),
		p("services/lbclient/source", "source", "github.com/nats-io/nats.go"),
		p("services/webgate", "webgate", Prefix+"services/atom/atomtest"),
		p("services/loader/engine/forward", "forward", Prefix+"sdk/go/ase", Prefix+"libs/aserr"),
		p("services/loader/bad", "bad", Prefix+"tools/suite"),
		{ImportPath: Prefix + "services/loader/session", Name: "session", TestImports: []string{"google.golang.org/grpc"}},
		p("tests/e2e", "e2e", Prefix+"services/atom", "net/http"),
		p("services/webgate/gate", "gate", Prefix+"services/webgate/ase", Prefix+"services/webgate/auth", "github.com/prometheus/client_golang/prometheus"),
		p("services/webgate/leaky", "leaky", "github.com/gorilla/websocket", Prefix+"services/webgate/transport/webapi"),
		p("services/webgate/transport/ws", "ws", "github.com/gorilla/websocket", Prefix+"services/webgate/gate", Prefix+"services/webgate/transport/webapi"),
		p("services/webgate/transport", "transport", "net/http", Prefix+"services/webgate/gate", Prefix+"services/webgate/transport/ws"),
	}
	var got []string
	for _, v := range Check(pkgs) {
		got = append(got, v.String())
	}
	require.Equal(t, []string{
		"libs/bad imports services/atom/route: libs imports only libs",
		"sdk/go/ase imports tools/suite: sdk imports only libs",
		"services/atom/bad imports github.com/nats-io/nats.go: a domain package imports no transport",
		"services/atom/bad imports google.golang.org/grpc/status: a domain package imports no transport",
		"services/atom/bad imports net/http/httptest: a domain package imports no transport",
		"services/atom/leaky imports services/atom/transport: a domain package imports no adapter of its service",
		"services/atom/leaky imports services/atom: a domain package imports no adapter of its service",
		"services/loader/bad imports tools/suite: a service imports only libs, sdk and itself",
		"services/webgate imports services/atom/atomtest: a service imports only libs, sdk and itself",
		"services/webgate/leaky imports github.com/gorilla/websocket: a domain package imports no transport",
		"services/webgate/leaky imports services/webgate/transport/webapi: a domain package imports no adapter of its service",
	}, got)
}

func TestDomain(t *testing.T) {
	for path, want := range map[string]bool{
		"services/atom":                     false,
		"services/atom/cmd/atom":            false,
		"services/atom/transport":           false,
		"services/atom/transport/grpc":      false,
		"services/loader/loadertest":        false,
		"services/lbclient/source":          false,
		"services/atom/route":               true,
		"services/polaris/store/bolt":       true,
		"services/polaris/internal/fanout":  true,
		"services/webgate/gate":             true,
		"services/webgate/ase":              true,
		"services/webgate/transport/ws":     false,
		"services/webgate/transport/oip":    false,
		"services/webgate/transport/webapi": false,
		"libs/aserr":                        false,
		"tests/e2e":                         false,
	} {
		require.Equal(t, want, Domain(path, lastElem(path)), path)
	}
}

// TestRepository checks the rules on every package of every module in go.work.
func TestRepository(t *testing.T) {
	root, err := RepoRoot()
	require.NoError(t, err)
	mods, err := Modules(root)
	require.NoError(t, err)
	require.NotEmpty(t, mods)
	var pkgs []Package
	for _, m := range mods {
		ps, err := List(m)
		require.NoError(t, err)
		pkgs = append(pkgs, ps...)
	}
	require.Greater(t, len(pkgs), 50, "the module list looks truncated")
	for adapter := range Adapters {
		found := false
		for _, p := range pkgs {
			found = found || p.ImportPath == Prefix+adapter
		}
		require.True(t, found, "Adapters names %s, which no longer exists", adapter)
	}
	for _, v := range Check(pkgs) {
		t.Error(v)
	}
}
