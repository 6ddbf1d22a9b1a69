// Package apps edits webgate's app credentials document (apps.json in polaris,
// docs/protocol.md "Apps and credentials"): create an app with fresh keys, rotate its keys,
// set its limits, delete it. Fields it does not know are kept as they are.
//
//	doc, _ := apps.Parse(content)
//	app, _ := doc.Create("app1", apps.Limits{QPS: ptr(50.0)})
//	content, _ = doc.Marshal()
package apps

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
)

// App is one app as it is listed.
type App struct {
	AppID        string   `json:"app_id"`
	APIKey       string   `json:"api_key"`
	APISecret    string   `json:"api_secret,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	IPAllow      []string `json:"ip_allow,omitempty"`
	QPS          float64  `json:"qps,omitempty"`
	MaxSessions  int      `json:"max_sessions,omitempty"`
	Disabled     bool     `json:"disabled,omitempty"`
}

// Doc is the apps document: each app as its JSON object, in order.
type Doc struct {
	apps []map[string]json.RawMessage
}

// Parse reads an apps document: {"apps": [...]} or a bare list; empty content is an
// empty document.
func Parse(content []byte) (*Doc, error) {
	d := &Doc{}
	t := bytes.TrimSpace(content)
	if len(t) == 0 {
		return d, nil
	}
	if t[0] == '[' {
		if err := json.Unmarshal(t, &d.apps); err != nil {
			return nil, fmt.Errorf("apps.json: %w", err)
		}
		return d, nil
	}
	var w struct {
		Apps []map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(t, &w); err != nil {
		return nil, fmt.Errorf("apps.json: %w", err)
	}
	d.apps = w.Apps
	return d, nil
}

// Marshal renders the document as {"apps": [...]}, indented.
func (d *Doc) Marshal() ([]byte, error) {
	apps := d.apps
	if apps == nil {
		apps = []map[string]json.RawMessage{}
	}
	b, err := json.MarshalIndent(map[string]any{"apps": apps}, "", "  ")
	return append(b, '\n'), err
}

// List returns the apps sorted by id, with their secrets when withSecrets.
func (d *Doc) List(withSecrets bool) []App {
	out := make([]App, 0, len(d.apps))
	for _, m := range d.apps {
		a := view(m)
		if !withSecrets {
			a.APISecret = ""
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AppID < out[j].AppID })
	return out
}

func view(m map[string]json.RawMessage) App {
	b, _ := json.Marshal(m)
	var a App
	_ = json.Unmarshal(b, &a)
	return a
}

// ErrNotFound is an app id the document does not hold.
var ErrNotFound = errors.New("no such app")

// ErrExists is an app id the document already holds.
var ErrExists = errors.New("app exists")

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$`)

func (d *Doc) find(id string) int {
	for i, m := range d.apps {
		if view(m).AppID == id {
			return i
		}
	}
	return -1
}

// Limits are the app settings to change; nil fields keep their value.
type Limits struct {
	QPS          *float64
	MaxSessions  *int
	Capabilities *[]string
	IPAllow      *[]string
	Disabled     *bool
}

func (d *Doc) apply(i int, l Limits) error {
	m := d.apps[i]
	set := func(k string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		m[k] = b
		return nil
	}
	if l.QPS != nil {
		if *l.QPS < 0 {
			return fmt.Errorf("qps %v: want 0 (unlimited) or more", *l.QPS)
		}
		if err := set("qps", *l.QPS); err != nil {
			return err
		}
	}
	if l.MaxSessions != nil {
		if *l.MaxSessions < 0 {
			return fmt.Errorf("max-sessions %d: want 0 (unlimited) or more", *l.MaxSessions)
		}
		if err := set("max_sessions", *l.MaxSessions); err != nil {
			return err
		}
	}
	if l.Capabilities != nil {
		if err := set("capabilities", *l.Capabilities); err != nil {
			return err
		}
	}
	if l.IPAllow != nil {
		if err := set("ip_allow", *l.IPAllow); err != nil {
			return err
		}
	}
	if l.Disabled != nil {
		if err := set("disabled", *l.Disabled); err != nil {
			return err
		}
	}
	return nil
}

// Create adds app id with a new key pair and limits l, and returns it with its secret.
func (d *Doc) Create(id string, l Limits) (App, error) {
	if !idRE.MatchString(id) {
		return App{}, fmt.Errorf("app id %q: use 1 to 50 letters, digits, '_', '.' or '-'", id)
	}
	if d.find(id) >= 0 {
		return App{}, fmt.Errorf("app %s: %w", id, ErrExists)
	}
	key, secret := newKeys()
	m := map[string]json.RawMessage{}
	for k, v := range map[string]string{"app_id": id, "api_key": key, "api_secret": secret} {
		m[k], _ = json.Marshal(v)
	}
	d.apps = append(d.apps, m)
	if err := d.apply(len(d.apps)-1, l); err != nil {
		d.apps = d.apps[:len(d.apps)-1]
		return App{}, err
	}
	return view(m), nil
}

// Rotate gives app id a new key pair and returns it with its secret; the old key is
// refused from then on.
func (d *Doc) Rotate(id string) (App, error) {
	i := d.find(id)
	if i < 0 {
		return App{}, fmt.Errorf("app %s: %w", id, ErrNotFound)
	}
	key, secret := newKeys()
	d.apps[i]["api_key"], _ = json.Marshal(key)
	d.apps[i]["api_secret"], _ = json.Marshal(secret)
	return view(d.apps[i]), nil
}

// SetLimits changes app id's limits and returns it without its secret.
func (d *Doc) SetLimits(id string, l Limits) (App, error) {
	i := d.find(id)
	if i < 0 {
		return App{}, fmt.Errorf("app %s: %w", id, ErrNotFound)
	}
	if err := d.apply(i, l); err != nil {
		return App{}, err
	}
	a := view(d.apps[i])
	a.APISecret = ""
	return a, nil
}

// Delete removes app id.
func (d *Doc) Delete(id string) error {
	i := d.find(id)
	if i < 0 {
		return fmt.Errorf("app %s: %w", id, ErrNotFound)
	}
	d.apps = append(d.apps[:i], d.apps[i+1:]...)
	return nil
}

func newKeys() (key, secret string) {
	return randomHex(16), randomHex(24)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}
