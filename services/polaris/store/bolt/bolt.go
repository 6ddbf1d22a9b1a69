// Package bolt is polaris's embedded storage backend: registrations, admin states,
// config revisions and apply reports in one bbolt file. Every write is one bbolt
// transaction, so a failed write leaves nothing behind.
//
//	st, err := bolt.Open(filepath.Join(dataDir, bolt.FileName))
//	if err != nil { return err }
//	defer st.Close()
//	reg, _ := registry.New(ctx, st, registry.Options{})
//	center := config.New(st, config.Options{})
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the bbolt file in polaris's data directory.
const FileName = "polaris.db"

// openTimeout bounds the wait for the file lock another process holds.
const openTimeout = 2 * time.Second

// ErrStore wraps every failure of the bbolt file.
var ErrStore = aserr.New(aserr.ErrInternal.Code, "polaris store")

var (
	bucketInstances = []byte("registry.instances")
	bucketAdmins    = []byte("registry.admins")
	bucketConfig    = []byte("config")
	keyHead         = []byte("head")
	bucketRevs      = []byte("revisions")
	bucketContent   = []byte("content")
	bucketApplied   = []byte("applied")
)

// Store is a registry.Store and a config.Store in one bbolt file.
type Store struct {
	db *bbolt.DB
}

var (
	_ registry.Store = (*Store)(nil)
	_ config.Store   = (*Store)(nil)
)

// Open opens (creating it and its directory when missing) the bbolt file at path. It
// fails when another process holds the file.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open %s: %w: %w", path, err, ErrStore)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: openTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: held by another process: %w", path, ErrStore)
		}
		return nil, fmt.Errorf("open %s: %w: %w", path, err, ErrStore)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketInstances, bucketAdmins, bucketConfig} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w: %w", path, err, ErrStore)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("bolt %s: %w: %w", op, err, ErrStore)
}

// instKey is the bucket key of a registry key: length-prefixed parts, never ambiguous.
func instKey(k registry.Key) []byte { return appendPart(appendPart(nil, k.Service), k.Addr) }

func appendPart(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// PutInstance records a registration.
func (s *Store) PutInstance(_ context.Context, reg registry.Registration) error {
	v, err := json.Marshal(reg)
	if err != nil {
		return wrap("put instance", err)
	}
	return wrap("put instance", s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInstances).Put(instKey(reg.Instance.Key()), v)
	}))
}

// DeleteInstance forgets a registration.
func (s *Store) DeleteInstance(_ context.Context, k registry.Key) error {
	return wrap("delete instance", s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInstances).Delete(instKey(k))
	}))
}

// Instances returns every recorded registration.
func (s *Store) Instances(context.Context) ([]registry.Registration, error) {
	var out []registry.Registration
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInstances).ForEach(func(_, v []byte) error {
			var r registry.Registration
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, wrap("instances", err)
	}
	registry.SortRegistrations(out)
	return out, nil
}

type adminRec struct {
	Key   registry.Key   `json:"key"`
	Admin registry.Admin `json:"admin"`
}

// PutAdmin records the admin state of k.
func (s *Store) PutAdmin(_ context.Context, k registry.Key, a registry.Admin) error {
	v, err := json.Marshal(adminRec{Key: k, Admin: a})
	if err != nil {
		return wrap("put admin", err)
	}
	return wrap("put admin", s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAdmins).Put(instKey(k), v)
	}))
}

// Admins returns every recorded admin state.
func (s *Store) Admins(context.Context) (map[registry.Key]registry.Admin, error) {
	out := map[registry.Key]registry.Admin{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAdmins).ForEach(func(_, v []byte) error {
			var a adminRec
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out[a.Key] = a.Admin
			return nil
		})
	})
	if err != nil {
		return nil, wrap("admins", err)
	}
	return out, nil
}

// dirKey is the bucket key prefix of a config directory; cfgKey adds the file name.
func dirKey(k config.Key) []byte {
	b := appendPart(nil, k.Project)
	b = appendPart(b, k.Group)
	b = appendPart(b, k.Service)
	return appendPart(b, k.Version)
}

func cfgKey(k config.Key) []byte { return append(dirKey(k), k.File...) }

type head struct {
	Key     config.Key       `json:"key"`
	Current int64            `json:"current"`
	Gray    map[string]int64 `json:"gray,omitempty"`
}

func revKey(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// readRecord reads the record in file bucket b.
func readRecord(b *bbolt.Bucket) (config.Record, error) {
	var h head
	if err := json.Unmarshal(b.Get(keyHead), &h); err != nil {
		return config.Record{}, err
	}
	rec := config.Record{Key: h.Key, Current: h.Current, Gray: h.Gray}
	content := b.Bucket(bucketContent)
	err := b.Bucket(bucketRevs).ForEach(func(k, v []byte) error {
		var f config.File
		if err := json.Unmarshal(v, &f); err != nil {
			return err
		}
		f.Content = bytes.Clone(content.Get(k))
		if f.Content == nil {
			f.Content = []byte{}
		}
		rec.Revisions = append(rec.Revisions, f)
		return nil
	})
	return rec, err
}

// Get returns the record of k.
func (s *Store) Get(_ context.Context, k config.Key) (config.Record, bool, error) {
	var rec config.Record
	ok := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketConfig).Bucket(cfgKey(k))
		if b == nil || b.Get(keyHead) == nil {
			return nil
		}
		var err error
		rec, err = readRecord(b)
		ok = err == nil
		return err
	})
	if err != nil {
		return config.Record{}, false, wrap("get "+k.String(), err)
	}
	return rec, ok, nil
}

// Append stores f as the next revision of f.Key and removes the revisions pruned beyond
// keep, in one transaction.
func (s *Store) Append(_ context.Context, f config.File, keep int) (config.Record, config.File, error) {
	var rec config.Record
	var stored config.File
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bucketConfig).CreateBucketIfNotExists(cfgKey(f.Key))
		if err != nil {
			return err
		}
		revs, err := b.CreateBucketIfNotExists(bucketRevs)
		if err != nil {
			return err
		}
		content, err := b.CreateBucketIfNotExists(bucketContent)
		if err != nil {
			return err
		}
		if _, err := b.CreateBucketIfNotExists(bucketApplied); err != nil {
			return err
		}
		rec = config.Record{Key: f.Key}
		if b.Get(keyHead) != nil {
			if rec, err = readRecord(b); err != nil {
				return err
			}
		}
		var pruned []int64
		stored, pruned = rec.Append(f, keep)
		for _, n := range pruned {
			if err := content.Delete(revKey(n)); err != nil {
				return err
			}
			if err := revs.Delete(revKey(n)); err != nil {
				return err
			}
		}
		meta := stored
		meta.Content = nil
		mv, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		hv, err := json.Marshal(head{Key: rec.Key, Current: rec.Current, Gray: rec.Gray})
		if err != nil {
			return err
		}
		rk := revKey(stored.Revision)
		if err := content.Put(rk, stored.Content); err != nil {
			return err
		}
		if err := revs.Put(rk, mv); err != nil {
			return err
		}
		return b.Put(keyHead, hv)
	})
	if err != nil {
		return config.Record{}, config.File{}, wrap("append "+f.Key.String(), err)
	}
	return rec, stored, nil
}

// Delete removes the record of k with its history and apply reports.
func (s *Store) Delete(_ context.Context, k config.Key) (bool, error) {
	ok := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		cb := tx.Bucket(bucketConfig)
		b := cb.Bucket(cfgKey(k))
		if b == nil {
			return nil
		}
		ok = b.Get(keyHead) != nil
		return cb.DeleteBucket(cfgKey(k))
	})
	if err != nil {
		return false, wrap("delete "+k.String(), err)
	}
	return ok, nil
}

// List returns the records under dir whose file name starts with dir.File.
func (s *Store) List(_ context.Context, dir config.Key) ([]config.Record, error) {
	var out []config.Record
	prefix := cfgKey(dir)
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketConfig).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if v != nil {
				continue // not a bucket
			}
			b := tx.Bucket(bucketConfig).Bucket(k)
			if b.Get(keyHead) == nil {
				continue
			}
			rec, err := readRecord(b)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list "+dir.String(), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.File < out[j].Key.File })
	return out, nil
}

// PutApplied records an apply report.
func (s *Store) PutApplied(_ context.Context, a config.Applied) error {
	v, err := json.Marshal(a)
	if err != nil {
		return wrap("put applied", err)
	}
	return wrap("put applied", s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bucketConfig).CreateBucketIfNotExists(cfgKey(a.Key))
		if err != nil {
			return err
		}
		ab, err := b.CreateBucketIfNotExists(bucketApplied)
		if err != nil {
			return err
		}
		return ab.Put([]byte(a.Addr), v)
	}))
}

// Applied returns the apply reports of k.
func (s *Store) Applied(_ context.Context, k config.Key) ([]config.Applied, error) {
	out := []config.Applied{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketConfig).Bucket(cfgKey(k))
		if b == nil || b.Bucket(bucketApplied) == nil {
			return nil
		}
		return b.Bucket(bucketApplied).ForEach(func(_, v []byte) error {
			var a config.Applied
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, wrap("applied "+k.String(), err)
	}
	config.SortApplied(out)
	return out, nil
}
