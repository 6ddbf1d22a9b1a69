// Package consul is polaris's shared storage backend on Consul, for several polaris
// replicas on one Consul cluster:
//
//   - instances are Consul agent services (one Consul service name, the ASF service as
//     a tag) with a TTL check that polaris renews (registry.SharedStore.Alive) and
//     DeregisterCriticalServiceAfter, so liveness lives in Consul;
//
//   - admin states are KV keys <prefix>registry/admin/<id>;
//
//   - a config file is a head key <prefix>config/head/<key> (current, gray, last
//     revision) and a tree <prefix>config/file/<key>/ with one key per revision, the
//     content (inline, or in chunks for large files) and the apply reports. A push is
//     one transaction that checks the head's ModifyIndex (CAS), so concurrent pushes
//     from two replicas get consecutive revisions and none is lost;
//
//   - watches are blocking queries (WaitIndex) on the service and the KV prefixes.
//
//     st, err := consul.Open(consul.Options{Addr: "127.0.0.1:8500", Log: log})
//     reg, _ := registry.New(ctx, st, registry.Options{})   // go reg.Run(ctx) follows Consul
//     center := config.New(st, config.Options{})            // go center.Run(ctx) follows Consul
package consul

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/hashicorp/consul/api"
	"github.com/rs/zerolog"
)

// Defaults of Options.
const (
	DefaultPrefix  = "polaris/"
	DefaultService = "asf"
	// DefaultDeregisterAfter is how long Consul keeps a failed instance before removing it.
	DefaultDeregisterAfter = time.Minute
)

const (
	inlineMax   = 128 << 10 // content up to this size goes into the push transaction
	chunkSize   = 256 << 10 // larger content is written in chunks of this size first
	metaChunk   = 512       // Consul's limit on a service meta value
	metaMaxKeys = 60        // Consul allows 64 meta keys per service
	casAttempts = 32
	waitTime    = 10 * time.Second
	retryWait   = 500 * time.Millisecond
	blobCacheMB = 64
)

// Errors of the Consul store.
var (
	// ErrStore wraps every failure to reach or use Consul.
	ErrStore = aserr.New(aserr.ErrNetwork.Code, "polaris consul store")
	// ErrConflict is returned when a push lost the compare-and-set race too many times.
	ErrConflict = aserr.New(aserr.ErrInvalidOp.Code, "concurrent config writes: try again")
)

// Options configure the store.
type Options struct {
	// Addr is the Consul HTTP address (host:port or URL).
	Addr string
	// Token is the Consul ACL token ("" = anonymous).
	Token string
	// Prefix is the KV prefix of every key polaris writes; DefaultPrefix by default.
	Prefix string
	// Service is the Consul service name of the registered instances; DefaultService by default.
	Service string
	// DeregisterAfter is the DeregisterCriticalServiceAfter of the instance checks.
	DeregisterAfter time.Duration
	// Log receives watch errors.
	Log zerolog.Logger
}

// Store is a registry.SharedStore and a config.SharedStore on Consul.
type Store struct {
	opt Options
	c   *api.Client
	tr  *http.Transport

	blobMu    sync.Mutex
	blobs     map[string][]byte // immutable chunk contents by blob id
	blobBytes int
}

var (
	_ registry.SharedStore = (*Store)(nil)
	_ config.SharedStore   = (*Store)(nil)
)

// Open returns a store on the Consul agent at opt.Addr and checks that it answers.
func Open(ctx context.Context, opt Options) (*Store, error) {
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(opt.Prefix, "/") {
		opt.Prefix += "/"
	}
	if opt.Service == "" {
		opt.Service = DefaultService
	}
	if opt.DeregisterAfter <= 0 {
		opt.DeregisterAfter = DefaultDeregisterAfter
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32, IdleConnTimeout: 90 * time.Second}
	cfg := api.DefaultNonPooledConfig()
	cfg.Address, cfg.Token, cfg.Transport = opt.Addr, opt.Token, tr
	cfg.HttpClient = &http.Client{Transport: tr}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul %s: %w: %w", opt.Addr, err, ErrStore)
	}
	s := &Store{opt: opt, c: c, tr: tr, blobs: map[string][]byte{}}
	if _, err := c.Status().LeaderWithQueryOptions(s.q(ctx)); err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("consul %s: %w: %w", opt.Addr, err, ErrStore)
	}
	return s, nil
}

// Close releases the HTTP connections; watches end with their contexts.
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("consul %s: %w: %w", op, err, ErrStore)
}

func (s *Store) q(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func (s *Store) w(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

// ---- registry ----

// serviceID is the Consul service ID of k, the same on every replica.
func (s *Store) serviceID(k registry.Key) string {
	h := sha256.Sum256([]byte(k.Service + "\x00" + k.Addr))
	return s.opt.Service + "-" + hex.EncodeToString(h[:12])
}

func checkID(serviceID string) string { return "service:" + serviceID }

// checkTTL is the Consul TTL of an instance: its polaris TTL plus the TTL/3 by which
// the pass-through of heartbeats may lag.
func checkTTL(ttl time.Duration) time.Duration { return ttl + ttl/3 }

// PutInstance registers reg as an agent service with a passing TTL check.
func (s *Store) PutInstance(ctx context.Context, reg registry.Registration) error {
	k := reg.Instance.Key()
	meta, err := encodeMeta(reg)
	if err != nil {
		return fmt.Errorf("register %s/%s: %w", k.Service, k.Addr, err)
	}
	host, port := k.Addr, 0
	if h, p, err := net.SplitHostPort(k.Addr); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			host, port = h, n
		}
	}
	id := s.serviceID(k)
	sr := &api.AgentServiceRegistration{
		ID: id, Name: s.opt.Service, Tags: []string{k.Service}, Address: host, Port: port, Meta: meta,
		Check: &api.AgentServiceCheck{
			CheckID: checkID(id), Name: "polaris heartbeat", TTL: checkTTL(reg.TTL).String(), Status: api.HealthPassing,
			DeregisterCriticalServiceAfter: s.opt.DeregisterAfter.String(),
		},
	}
	if err := s.c.Agent().ServiceRegisterOpts(sr, api.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
		return wrap("register "+k.Service+"/"+k.Addr, err)
	}
	// Re-registering keeps a failed check's status: pass it explicitly.
	return wrap("register "+k.Service+"/"+k.Addr, s.c.Agent().UpdateTTLOpts(checkID(id), "", api.HealthPassing, s.q(ctx)))
}

// encodeMeta spreads reg over service meta values: base64 of its JSON in chunks of
// Consul's value limit, under keys polaris0, polaris1, ...
func encodeMeta(reg registry.Registration) (map[string]string, error) {
	raw, err := json.Marshal(reg)
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.EncodeToString(raw)
	meta := map[string]string{}
	for i := 0; len(enc) > 0; i++ {
		if i >= metaMaxKeys {
			return nil, fmt.Errorf("labels too large for Consul service meta (%d bytes): %w", len(raw), registry.ErrInvalid)
		}
		n := min(metaChunk, len(enc))
		meta["polaris"+strconv.Itoa(i)] = enc[:n]
		enc = enc[n:]
	}
	return meta, nil
}

// decodeMeta reads back what encodeMeta wrote; ok is false for a service polaris did
// not register.
func decodeMeta(meta map[string]string) (registry.Registration, bool) {
	var b strings.Builder
	for i := 0; i < metaMaxKeys; i++ {
		part, ok := meta["polaris"+strconv.Itoa(i)]
		if !ok {
			break
		}
		b.WriteString(part)
	}
	var reg registry.Registration
	raw, err := base64.RawURLEncoding.DecodeString(b.String())
	if err != nil || json.Unmarshal(raw, &reg) != nil || reg.Instance.Service == "" || reg.Instance.Addr == "" {
		return registry.Registration{}, false
	}
	return reg, true
}

// Alive passes a heartbeat of k to its TTL check.
func (s *Store) Alive(ctx context.Context, k registry.Key) error {
	err := s.c.Agent().UpdateTTLOpts(checkID(s.serviceID(k)), "", api.HealthPassing, s.q(ctx))
	return wrap("alive "+k.Service+"/"+k.Addr, err)
}

// DeleteInstance deregisters k.
func (s *Store) DeleteInstance(ctx context.Context, k registry.Key) error {
	err := s.c.Agent().ServiceDeregisterOpts(s.serviceID(k), s.q(ctx))
	var se api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return nil
	}
	return wrap("deregister "+k.Service+"/"+k.Addr, err)
}

// Instances returns every instance whose checks pass.
func (s *Store) Instances(ctx context.Context) ([]registry.Registration, error) {
	regs, _, err := s.instances(s.q(ctx))
	return regs, err
}

func (s *Store) instances(q *api.QueryOptions) ([]registry.Registration, *api.QueryMeta, error) {
	entries, meta, err := s.c.Health().Service(s.opt.Service, "", false, q)
	if err != nil {
		return nil, nil, wrap("instances", err)
	}
	out := make([]registry.Registration, 0, len(entries))
	for _, e := range entries {
		if e.Checks.AggregatedStatus() != api.HealthPassing {
			continue
		}
		if reg, ok := decodeMeta(e.Service.Meta); ok {
			out = append(out, reg)
		} // else not registered by polaris
	}
	registry.SortRegistrations(out)
	return out, meta, nil
}

// WatchInstances calls fn with the live instances whenever Consul's view changes.
func (s *Store) WatchInstances(ctx context.Context, fn func([]registry.Registration)) {
	s.watch(ctx, "instances", func(q *api.QueryOptions) (uint64, error) {
		regs, meta, err := s.instances(q)
		if err != nil {
			return 0, err
		}
		fn(regs)
		return meta.LastIndex, nil
	})
}

type adminRec struct {
	Key   registry.Key   `json:"key"`
	Admin registry.Admin `json:"admin"`
}

func (s *Store) adminPrefix() string { return s.opt.Prefix + "registry/admin/" }

// PutAdmin records the admin state of k in KV.
func (s *Store) PutAdmin(ctx context.Context, k registry.Key, a registry.Admin) error {
	v, err := json.Marshal(adminRec{Key: k, Admin: a})
	if err != nil {
		return wrap("put admin", err)
	}
	_, err = s.c.KV().Put(&api.KVPair{Key: s.adminPrefix() + s.serviceID(k), Value: v}, s.w(ctx))
	return wrap("put admin", err)
}

// Admins returns every recorded admin state.
func (s *Store) Admins(ctx context.Context) (map[registry.Key]registry.Admin, error) {
	m, _, err := s.admins(s.q(ctx))
	return m, err
}

func (s *Store) admins(q *api.QueryOptions) (map[registry.Key]registry.Admin, *api.QueryMeta, error) {
	pairs, meta, err := s.c.KV().List(s.adminPrefix(), q)
	if err != nil {
		return nil, nil, wrap("admins", err)
	}
	out := make(map[registry.Key]registry.Admin, len(pairs))
	for _, p := range pairs {
		var a adminRec
		if json.Unmarshal(p.Value, &a) == nil {
			out[a.Key] = a.Admin
		}
	}
	return out, meta, nil
}

// WatchAdmins calls fn with every admin state whenever one changes.
func (s *Store) WatchAdmins(ctx context.Context, fn func(map[registry.Key]registry.Admin)) {
	s.watch(ctx, "admins", func(q *api.QueryOptions) (uint64, error) {
		m, meta, err := s.admins(q)
		if err != nil {
			return 0, err
		}
		fn(m)
		return meta.LastIndex, nil
	})
}

// watch runs a blocking query until ctx ends: query gets the index to wait on and
// returns the index of its answer.
func (s *Store) watch(ctx context.Context, what string, query func(q *api.QueryOptions) (uint64, error)) {
	var index uint64
	for ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: waitTime}).WithContext(ctx)
		next, err := query(q)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.opt.Log.Warn().Err(err).Str("watch", what).Msg("consul watch")
			index = 0
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryWait):
			}
			continue
		}
		if next < index {
			next = 0 // the index went backwards (Consul restored): start over
		}
		index = next
	}
}

// ---- config ----

func escKey(k config.Key) string {
	parts := []string{k.Project, k.Group, k.Service, k.Version, k.File}
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func (s *Store) headKey(k config.Key) string { return s.opt.Prefix + "config/head/" + escKey(k) }
func (s *Store) fileKey(k config.Key) string { return s.opt.Prefix + "config/file/" + escKey(k) + "/" }

type head struct {
	Key     config.Key       `json:"key"`
	Current int64            `json:"current"`
	Gray    map[string]int64 `json:"gray,omitempty"`
	Last    int64            `json:"last"`
}

// revMeta is one stored revision: the file without its content, and where it is.
type revMeta struct {
	File   config.File `json:"file"`
	Inline []byte      `json:"inline,omitempty"`
	Blob   string      `json:"blob,omitempty"`
	Chunks int         `json:"chunks,omitempty"`
	Size   int         `json:"size"`
	SHA256 string      `json:"sha256"`
}

func revKey(fileKey string, n int64) string { return fmt.Sprintf("%srev/%020d", fileKey, n) }
func blobKey(fileKey, blob string, i int) string {
	return fmt.Sprintf("%sblob/%s/%06d", fileKey, blob, i)
}

// pruneMax bounds the pruned revisions removed by one push (two operations each).
const pruneMax = 30

// read reads the record of k in one consistent transaction; index is the head's
// ModifyIndex (0 when k does not exist).
func (s *Store) read(ctx context.Context, k config.Key) (config.Record, uint64, bool, error) {
	return s.readBlobs(ctx, k, nil)
}

// readBlobs is read that also fills blobs (when not nil) with the chunk set of every
// revision whose content is chunked.
func (s *Store) readBlobs(ctx context.Context, k config.Key, blobs map[int64]string) (config.Record, uint64, bool, error) {
	hk, fk := s.headKey(k), s.fileKey(k)
	ok, resp, _, err := s.c.KV().Txn(api.KVTxnOps{
		{Verb: api.KVGetTree, Key: hk},
		{Verb: api.KVGetTree, Key: fk + "rev/"},
	}, s.q(ctx))
	if err != nil {
		return config.Record{}, 0, false, err
	}
	if !ok {
		return config.Record{}, 0, false, fmt.Errorf("read %s: %v", k, resp.Errors)
	}
	var h head
	var index uint64
	var metas []revMeta
	for _, p := range resp.Results {
		switch {
		case p.Key == hk:
			if err := json.Unmarshal(p.Value, &h); err != nil {
				return config.Record{}, 0, false, fmt.Errorf("head of %s: %w", k, err)
			}
			index = p.ModifyIndex
		case strings.HasPrefix(p.Key, fk+"rev/"):
			var m revMeta
			if err := json.Unmarshal(p.Value, &m); err != nil {
				return config.Record{}, 0, false, fmt.Errorf("revision of %s: %w", k, err)
			}
			metas = append(metas, m)
		}
	}
	if index == 0 {
		return config.Record{}, 0, false, nil
	}
	sort.Slice(metas, func(i, j int) bool { return metas[i].File.Revision < metas[j].File.Revision })
	rec := config.Record{Key: h.Key, Current: h.Current, Gray: h.Gray}
	for _, m := range metas {
		if m.File.Revision > h.Last {
			continue
		}
		f := m.File
		if blobs != nil && m.Blob != "" {
			blobs[f.Revision] = m.Blob
		}
		if m.Blob == "" {
			f.Content = m.Inline
		} else if f.Content, err = s.blob(ctx, fk, m); err != nil {
			return config.Record{}, 0, false, err
		}
		if f.Content == nil {
			f.Content = []byte{}
		}
		rec.Revisions = append(rec.Revisions, f)
	}
	return rec, index, true, nil
}

// blob reads the chunked content of m (immutable, so cached).
func (s *Store) blob(ctx context.Context, fk string, m revMeta) ([]byte, error) {
	s.blobMu.Lock()
	b, ok := s.blobs[m.Blob]
	s.blobMu.Unlock()
	if ok {
		return bytes.Clone(b), nil
	}
	pairs, _, err := s.c.KV().List(fk+"blob/"+m.Blob+"/", s.q(ctx))
	if err != nil {
		return nil, err
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
	buf := make([]byte, 0, m.Size)
	for _, p := range pairs {
		buf = append(buf, p.Value...)
	}
	if sum := sha256.Sum256(buf); len(pairs) != m.Chunks || hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, fmt.Errorf("content of %s revision %d is damaged (%d of %d chunks)", m.File.Key, m.File.Revision, len(pairs), m.Chunks)
	}
	s.blobMu.Lock()
	if s.blobBytes+len(buf) > blobCacheMB<<20 {
		s.blobs, s.blobBytes = map[string][]byte{}, 0
	}
	s.blobs[m.Blob] = buf
	s.blobBytes += len(buf)
	s.blobMu.Unlock()
	return bytes.Clone(buf), nil
}

// Get returns the record of k.
func (s *Store) Get(ctx context.Context, k config.Key) (config.Record, bool, error) {
	rec, _, ok, err := s.read(ctx, k)
	if err != nil {
		return config.Record{}, false, wrap("get "+k.String(), err)
	}
	return rec, ok, nil
}

// Append stores f as the next revision of f.Key: large content is written in chunks
// first (unreferenced until the push commits), then one transaction checks the head's
// ModifyIndex, writes the revision and moves the head; a lost race reads again and
// retries.
func (s *Store) Append(ctx context.Context, f config.File, keep int) (config.Record, config.File, error) {
	k := f.Key
	fk := s.fileKey(k)
	sum := sha256.Sum256(f.Content)
	m := revMeta{Size: len(f.Content), SHA256: hex.EncodeToString(sum[:])}
	if len(f.Content) <= inlineMax {
		m.Inline = bytes.Clone(f.Content)
	} else {
		id, err := s.writeBlob(ctx, fk, f.Content)
		if err != nil {
			return config.Record{}, config.File{}, wrap("push "+k.String(), err)
		}
		m.Blob, m.Chunks = id, (len(f.Content)+chunkSize-1)/chunkSize
	}
	for range casAttempts {
		blobs := map[int64]string{}
		rec, index, exists, err := s.readBlobs(ctx, k, blobs)
		if err != nil {
			s.dropBlob(m.Blob, fk)
			return config.Record{}, config.File{}, wrap("push "+k.String(), err)
		}
		if !exists {
			rec = config.Record{Key: k}
		}
		stored, pruned := rec.Append(f, keep)
		m.File = stored
		m.File.Content = nil
		mv, err := json.Marshal(m)
		if err != nil {
			return config.Record{}, config.File{}, wrap("push "+k.String(), err)
		}
		hv, err := json.Marshal(head{Key: k, Current: rec.Current, Gray: rec.Gray, Last: stored.Revision})
		if err != nil {
			return config.Record{}, config.File{}, wrap("push "+k.String(), err)
		}
		check := &api.KVTxnOp{Verb: api.KVCheckIndex, Key: s.headKey(k), Index: index}
		if !exists {
			check = &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: s.headKey(k)}
		}
		ops := api.KVTxnOps{
			check,
			{Verb: api.KVSet, Key: revKey(fk, stored.Revision), Value: mv},
			{Verb: api.KVSet, Key: s.headKey(k), Value: hv},
		}
		// Pruned revisions go in the same transaction, at most pruneMax of them (a
		// transaction holds 64 operations); the rest go with the next pushes.
		for _, n := range pruned[:min(len(pruned), pruneMax)] {
			ops = append(ops, &api.KVTxnOp{Verb: api.KVDelete, Key: revKey(fk, n)})
			if b := blobs[n]; b != "" {
				ops = append(ops, &api.KVTxnOp{Verb: api.KVDeleteTree, Key: fk + "blob/" + b + "/"})
			}
		}
		ok, resp, _, err := s.c.KV().Txn(ops, s.q(ctx))
		if err != nil {
			s.dropBlob(m.Blob, fk)
			return config.Record{}, config.File{}, wrap("push "+k.String(), err)
		}
		if ok {
			return rec, stored, nil
		}
		if len(resp.Errors) == 0 || resp.Errors[0].OpIndex != 0 {
			s.dropBlob(m.Blob, fk)
			return config.Record{}, config.File{}, wrap("push "+k.String(), fmt.Errorf("transaction refused: %v", resp.Errors))
		}
		// Another replica pushed first: read again.
	}
	s.dropBlob(m.Blob, fk)
	return config.Record{}, config.File{}, fmt.Errorf("push %s: %d attempts: %w", k, casAttempts, ErrConflict)
}

func (s *Store) writeBlob(ctx context.Context, fk string, content []byte) (string, error) {
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	for i := 0; i*chunkSize < len(content); i++ {
		part := content[i*chunkSize : min((i+1)*chunkSize, len(content))]
		if _, err := s.c.KV().Put(&api.KVPair{Key: blobKey(fk, id, i), Value: part}, s.w(ctx)); err != nil {
			s.dropBlob(id, fk)
			return "", err
		}
	}
	return id, nil
}

// dropBlob removes the chunks of a push that did not commit (best effort: they are
// never referenced, and a delete of the file removes them too).
func (s *Store) dropBlob(id, fk string) {
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.c.KV().DeleteTree(fk+"blob/"+id+"/", s.w(ctx))
}

// Delete removes the head and the whole tree of k in one transaction.
func (s *Store) Delete(ctx context.Context, k config.Key) (bool, error) {
	for range casAttempts {
		_, index, exists, err := s.read(ctx, k)
		if err != nil {
			return false, wrap("delete "+k.String(), err)
		}
		if !exists {
			return false, nil
		}
		ok, resp, _, err := s.c.KV().Txn(api.KVTxnOps{
			{Verb: api.KVCheckIndex, Key: s.headKey(k), Index: index},
			{Verb: api.KVDelete, Key: s.headKey(k)},
			{Verb: api.KVDeleteTree, Key: s.fileKey(k)},
		}, s.q(ctx))
		if err != nil {
			return false, wrap("delete "+k.String(), err)
		}
		if ok {
			return true, nil
		}
		if len(resp.Errors) == 0 || resp.Errors[0].OpIndex != 0 {
			return false, wrap("delete "+k.String(), fmt.Errorf("transaction refused: %v", resp.Errors))
		}
	}
	return false, fmt.Errorf("delete %s: %d attempts: %w", k, casAttempts, ErrConflict)
}

// List returns the records under dir whose file name starts with dir.File.
func (s *Store) List(ctx context.Context, dir config.Key) ([]config.Record, error) {
	heads, _, err := s.c.KV().List(s.headKey(dir), s.q(ctx))
	if err != nil {
		return nil, wrap("list "+dir.String(), err)
	}
	var out []config.Record
	for _, p := range heads {
		var h head
		if json.Unmarshal(p.Value, &h) != nil || !dir.Matches(h.Key, true) {
			continue
		}
		rec, ok, err := s.Get(ctx, h.Key)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.File < out[j].Key.File })
	return out, nil
}

// PutApplied records an apply report under the file's tree.
func (s *Store) PutApplied(ctx context.Context, a config.Applied) error {
	v, err := json.Marshal(a)
	if err != nil {
		return wrap("put applied", err)
	}
	_, err = s.c.KV().Put(&api.KVPair{Key: s.fileKey(a.Key) + "applied/" + url.PathEscape(a.Addr), Value: v}, s.w(ctx))
	return wrap("put applied", err)
}

// Applied returns the apply reports of k.
func (s *Store) Applied(ctx context.Context, k config.Key) ([]config.Applied, error) {
	pairs, _, err := s.c.KV().List(s.fileKey(k)+"applied/", s.q(ctx))
	if err != nil {
		return nil, wrap("applied "+k.String(), err)
	}
	out := make([]config.Applied, 0, len(pairs))
	for _, p := range pairs {
		var a config.Applied
		if json.Unmarshal(p.Value, &a) == nil {
			out = append(out, a)
		}
	}
	config.SortApplied(out)
	return out, nil
}

// Watch calls fn for every config file that changes after Watch starts, from a
// blocking query on the heads.
func (s *Store) Watch(ctx context.Context, fn func(k config.Key, rec *config.Record)) {
	var seen map[string]uint64 // head key → ModifyIndex; nil until the first answer
	keys := map[string]config.Key{}
	s.watch(ctx, "config", func(q *api.QueryOptions) (uint64, error) {
		pairs, meta, err := s.c.KV().List(s.opt.Prefix+"config/head/", q)
		if err != nil {
			return 0, wrap("watch config", err)
		}
		now := make(map[string]uint64, len(pairs))
		for _, p := range pairs {
			now[p.Key] = p.ModifyIndex
			if seen == nil || seen[p.Key] == p.ModifyIndex {
				continue
			}
			var h head
			if json.Unmarshal(p.Value, &h) != nil {
				continue
			}
			keys[p.Key] = h.Key
			rec, ok, err := s.Get(ctx, h.Key)
			if err != nil {
				return 0, err // seen stays: the change is found again
			}
			if ok {
				fn(h.Key, &rec)
			}
		}
		for hk := range seen {
			if _, ok := now[hk]; !ok {
				if k, ok := keys[hk]; ok {
					fn(k, nil)
				}
			}
		}
		for _, p := range pairs {
			var h head
			if _, ok := keys[p.Key]; !ok && json.Unmarshal(p.Value, &h) == nil {
				keys[p.Key] = h.Key
			}
		}
		for hk := range keys {
			if _, ok := now[hk]; !ok {
				delete(keys, hk)
			}
		}
		seen = now
		return meta.LastIndex, nil
	})
}
