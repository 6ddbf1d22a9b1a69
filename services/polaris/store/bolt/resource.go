package bolt

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/athenaserving/asf/services/polaris/resource"
	bbolt "go.etcd.io/bbolt"
)

// Resources live in two buckets keyed alike (length-prefixed service, app_id, res_id):
// the JSON meta and the data, so a listing never reads the data.
var (
	bucketResMeta = []byte("resources.meta")
	bucketResData = []byte("resources.data")
)

var _ resource.Store = (*Store)(nil)

func resKey(k resource.Key) []byte {
	return appendPart(appendPart(appendPart(nil, k.Service), k.AppID), k.ID)
}

// PutResource stores r as the next revision of r.Key in one transaction.
func (s *Store) PutResource(_ context.Context, r resource.Resource) (resource.Meta, error) {
	var m resource.Meta
	err := s.db.Update(func(tx *bbolt.Tx) error {
		mb, err := tx.CreateBucketIfNotExists(bucketResMeta)
		if err != nil {
			return err
		}
		db, err := tx.CreateBucketIfNotExists(bucketResData)
		if err != nil {
			return err
		}
		key := resKey(r.Key)
		var prev resource.Meta
		if v := mb.Get(key); v != nil {
			if err := json.Unmarshal(v, &prev); err != nil {
				return err
			}
		}
		m = resource.Stamp(resource.Meta{Key: r.Key, Revision: prev.Revision + 1, Updated: r.Updated}, r.Data)
		v, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := mb.Put(key, v); err != nil {
			return err
		}
		return db.Put(key, bytes.Clone(r.Data))
	})
	if err != nil {
		return resource.Meta{}, wrap("put resource "+r.Key.String(), err)
	}
	return m, nil
}

// GetResource returns the resource of k.
func (s *Store) GetResource(_ context.Context, k resource.Key) (resource.Resource, bool, error) {
	var r resource.Resource
	ok := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		mb, db := tx.Bucket(bucketResMeta), tx.Bucket(bucketResData)
		if mb == nil || db == nil {
			return nil
		}
		v := mb.Get(resKey(k))
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &r.Meta); err != nil {
			return err
		}
		r.Data, ok = bytes.Clone(db.Get(resKey(k))), true
		if r.Data == nil {
			r.Data = []byte{}
		}
		return nil
	})
	if err != nil {
		return resource.Resource{}, false, wrap("get resource "+k.String(), err)
	}
	return r, ok, nil
}

// DeleteResource removes k.
func (s *Store) DeleteResource(_ context.Context, k resource.Key) (bool, error) {
	ok := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		mb, db := tx.Bucket(bucketResMeta), tx.Bucket(bucketResData)
		if mb == nil || db == nil || mb.Get(resKey(k)) == nil {
			return nil
		}
		ok = true
		if err := mb.Delete(resKey(k)); err != nil {
			return err
		}
		return db.Delete(resKey(k))
	})
	if err != nil {
		return false, wrap("delete resource "+k.String(), err)
	}
	return ok, nil
}

// ListResources returns the metas of service (and appID when not empty).
func (s *Store) ListResources(_ context.Context, service, appID string) ([]resource.Meta, error) {
	prefix := appendPart(nil, service)
	if appID != "" {
		prefix = appendPart(prefix, appID)
	}
	out := []resource.Meta{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		mb := tx.Bucket(bucketResMeta)
		if mb == nil {
			return nil
		}
		c := mb.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var m resource.Meta
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list resources "+service, err)
	}
	resource.SortMetas(out)
	return out, nil
}
