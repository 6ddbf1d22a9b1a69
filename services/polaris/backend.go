package polaris

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/athenaserving/asf/services/polaris/store/bolt"
	"github.com/athenaserving/asf/services/polaris/store/consul"
	"github.com/rs/zerolog"
)

// Storage backends (Config.Backend).
const (
	// BackendEmbedded keeps registrations and config in a bbolt file under data-dir.
	BackendEmbedded = "embedded"
	// BackendMemory keeps everything in memory: lost on restart.
	BackendMemory = "memory"
	// BackendConsul keeps instances as Consul services and config in Consul KV, shared
	// by every polaris replica on the same Consul.
	BackendConsul = "consul"
)

// backend is the opened storage of a server.
type backend struct {
	reg   registry.Store
	cfg   config.Store
	res   resource.Store
	close func() error
}

func validBackend(c Config) []string {
	switch c.Backend {
	case BackendEmbedded:
		if c.DataDir == "" {
			return []string{"data-dir is required with backend embedded"}
		}
	case BackendMemory:
	case BackendConsul:
		if c.ConsulAddr == "" {
			return []string{"consul-addr is required with backend consul"}
		}
	default:
		return []string{fmt.Sprintf("backend %q is not one of embedded, memory, consul", c.Backend)}
	}
	return nil
}

func openBackend(ctx context.Context, c Config, log zerolog.Logger) (*backend, error) {
	switch c.Backend {
	case BackendEmbedded:
		st, err := bolt.Open(filepath.Join(c.DataDir, bolt.FileName))
		if err != nil {
			return nil, fmt.Errorf("polaris backend embedded: %w", err)
		}
		return &backend{reg: st, cfg: st, res: st, close: st.Close}, nil
	case BackendConsul:
		st, err := consul.Open(ctx, consul.Options{Addr: c.ConsulAddr, Token: c.ConsulToken, Log: log})
		if err != nil {
			return nil, fmt.Errorf("polaris backend consul: %w", err)
		}
		return &backend{reg: st, cfg: st, res: st, close: st.Close}, nil
	default:
		return &backend{reg: registry.NewMemStore(), cfg: config.NewMemStore(), res: resource.NewMemStore(), close: func() error { return nil }}, nil
	}
}
