package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"sync"
)

// App is one client application: its credentials and limits (apps.json, docs/protocol.md
// "Apps and credentials"). It is immutable after ParseApps.
type App struct {
	// ID is the app_id clients put in header.app_id.
	ID string `json:"app_id"`
	// APIKey and APISecret are the HMAC credentials.
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
	// Capabilities the app may call; empty or "*" means every capability.
	Capabilities []string `json:"capabilities,omitempty"`
	// IPAllow lists the client addresses allowed (CIDRs or single IPs); empty allows all.
	IPAllow []string `json:"ip_allow,omitempty"`
	// QPS is the request rate limit (once requests and new sessions); 0 means unlimited.
	QPS float64 `json:"qps,omitempty"`
	// MaxSessions bounds the app's concurrent once requests, WebSocket connections and
	// multiplexed sub-sessions (a multiplexed socket counts once per running sub-session
	// beyond its first); 0 means unlimited.
	MaxSessions int `json:"max_sessions,omitempty"`
	// Disabled revokes the app: its key is refused.
	Disabled bool `json:"disabled,omitempty"`

	allCaps bool
	caps    map[string]bool
	nets    []netip.Prefix
	macs    *sync.Pool // of hash.Hash keyed with APISecret
}

// Allows reports whether the app may call capability.
func (a *App) Allows(capability string) bool { return a.allCaps || a.caps[capability] }

// AllowsIP reports whether a client at ip (text form) may use the app.
func (a *App) AllowsIP(ip string) bool {
	if len(a.nets) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, n := range a.nets {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// mac appends HMAC(APISecret, msg) with algorithm alg (a key of algorithms) to dst;
// hmac-sha256, the common one, uses a pooled hasher.
func (a *App) mac(alg, msg string, dst []byte) []byte {
	if alg != "hmac-sha256" {
		h := hmac.New(algorithms[alg], []byte(a.APISecret))
		h.Write([]byte(msg))
		return h.Sum(dst)
	}
	h := a.macs.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(msg))
	dst = h.Sum(dst)
	a.macs.Put(h)
	return dst
}

// AppSet is an immutable set of apps indexed by api_key and app_id.
type AppSet struct {
	byKey map[string]*App
	byID  map[string]*App
}

// ByKey returns the app with api_key key, or nil.
func (s *AppSet) ByKey(key string) *App { return s.byKey[key] }

// ByID returns the app with app_id id, or nil.
func (s *AppSet) ByID(id string) *App { return s.byID[id] }

// Len is the number of apps.
func (s *AppSet) Len() int { return len(s.byID) }

// ParseApps parses an apps.json document: {"apps":[{app}, ...]} or a bare list of apps.
// Every app needs app_id, api_key and api_secret; ids and keys are unique.
func ParseApps(data []byte) (*AppSet, error) {
	var list []*App
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "[") {
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("apps: %w", err)
		}
	} else {
		var doc struct {
			Apps []*App `json:"apps"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("apps: %w", err)
		}
		list = doc.Apps
	}
	return NewAppSet(list...)
}

// NewAppSet validates apps and indexes them.
func NewAppSet(apps ...*App) (*AppSet, error) {
	s := &AppSet{byKey: make(map[string]*App, len(apps)), byID: make(map[string]*App, len(apps))}
	for i, a := range apps {
		if a == nil || a.ID == "" || a.APIKey == "" || a.APISecret == "" {
			return nil, fmt.Errorf("apps[%d]: app_id, api_key and api_secret are required", i)
		}
		if s.byID[a.ID] != nil {
			return nil, fmt.Errorf("apps[%d]: app_id %q repeated", i, a.ID)
		}
		if s.byKey[a.APIKey] != nil {
			return nil, fmt.Errorf("apps[%d] (%s): api_key repeated", i, a.ID)
		}
		if a.QPS < 0 || a.MaxSessions < 0 {
			return nil, fmt.Errorf("apps[%d] (%s): qps and max_sessions must not be negative", i, a.ID)
		}
		c := *a
		c.caps = map[string]bool{}
		c.allCaps = len(a.Capabilities) == 0
		for _, cp := range a.Capabilities {
			if cp == "*" {
				c.allCaps = true
			}
			c.caps[cp] = true
		}
		for _, n := range a.IPAllow {
			p, err := parsePrefix(n)
			if err != nil {
				return nil, fmt.Errorf("apps[%d] (%s): ip_allow %q: %v", i, a.ID, n, err)
			}
			c.nets = append(c.nets, p)
		}
		secret := []byte(a.APISecret)
		c.macs = &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
		s.byID[c.ID] = &c
		s.byKey[c.APIKey] = &c
	}
	return s, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
