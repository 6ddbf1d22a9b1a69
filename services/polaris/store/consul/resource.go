package consul

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/athenaserving/asf/services/polaris/resource"
	"github.com/hashicorp/consul/api"
)

// Resources: a head key <prefix>resource/head/<service>/<app_id>/<res_id> holds the
// meta and, up to inlineMax, the data; larger data is written first in chunks of
// chunkSize (Consul's KV values are limited to 512 KiB) under
// <prefix>resource/data/<service>/<app_id>/<res_id>/blob/<blob>/, then the head is
// moved with a compare-and-set, and the previous revision's chunks are removed.

var _ resource.Store = (*Store)(nil)

type resHead struct {
	Meta   resource.Meta `json:"meta"`
	Inline []byte        `json:"inline,omitempty"`
	Blob   string        `json:"blob,omitempty"`
	Chunks int           `json:"chunks,omitempty"`
}

func resPath(k resource.Key) string { return k.Service + "/" + k.AppID + "/" + k.ID }

func (s *Store) resHeadKey(k resource.Key) string {
	return s.opt.Prefix + "resource/head/" + resPath(k)
}

func (s *Store) resDataKey(k resource.Key) string {
	return s.opt.Prefix + "resource/data/" + resPath(k) + "/"
}

func (s *Store) readResHead(ctx context.Context, k resource.Key) (resHead, uint64, bool, error) {
	p, _, err := s.c.KV().Get(s.resHeadKey(k), s.q(ctx))
	if err != nil || p == nil {
		return resHead{}, 0, false, err
	}
	var h resHead
	if err := json.Unmarshal(p.Value, &h); err != nil {
		return resHead{}, 0, false, fmt.Errorf("head of %s: %w", k, err)
	}
	return h, p.ModifyIndex, true, nil
}

// PutResource stores r as the next revision of r.Key.
func (s *Store) PutResource(ctx context.Context, r resource.Resource) (resource.Meta, error) {
	k, dk := r.Key, s.resDataKey(r.Key)
	h := resHead{}
	if len(r.Data) <= inlineMax {
		h.Inline = bytes.Clone(r.Data)
	} else {
		id, err := s.writeBlob(ctx, dk, r.Data)
		if err != nil {
			return resource.Meta{}, wrap("put resource "+k.String(), err)
		}
		h.Blob, h.Chunks = id, (len(r.Data)+chunkSize-1)/chunkSize
	}
	for range casAttempts {
		prev, index, exists, err := s.readResHead(ctx, k)
		if err != nil {
			s.dropBlob(h.Blob, dk)
			return resource.Meta{}, wrap("put resource "+k.String(), err)
		}
		h.Meta = resource.Stamp(resource.Meta{Key: k, Revision: prev.Meta.Revision + 1, Updated: r.Updated}, r.Data)
		hv, err := json.Marshal(h)
		if err != nil {
			return resource.Meta{}, wrap("put resource "+k.String(), err)
		}
		check := &api.KVTxnOp{Verb: api.KVCheckIndex, Key: s.resHeadKey(k), Index: index}
		if !exists {
			check = &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: s.resHeadKey(k)}
		}
		ok, resp, _, err := s.c.KV().Txn(api.KVTxnOps{check, {Verb: api.KVSet, Key: s.resHeadKey(k), Value: hv}}, s.q(ctx))
		if err != nil {
			s.dropBlob(h.Blob, dk)
			return resource.Meta{}, wrap("put resource "+k.String(), err)
		}
		if ok {
			s.dropBlob(prev.Blob, dk)
			return h.Meta, nil
		}
		if len(resp.Errors) == 0 || resp.Errors[0].OpIndex != 0 {
			s.dropBlob(h.Blob, dk)
			return resource.Meta{}, wrap("put resource "+k.String(), fmt.Errorf("transaction refused: %v", resp.Errors))
		}
	}
	s.dropBlob(h.Blob, dk)
	return resource.Meta{}, fmt.Errorf("put resource %s: %d attempts: %w", k, casAttempts, ErrConflict)
}

// GetResource returns the resource of k.
func (s *Store) GetResource(ctx context.Context, k resource.Key) (resource.Resource, bool, error) {
	h, _, ok, err := s.readResHead(ctx, k)
	if err != nil {
		return resource.Resource{}, false, wrap("get resource "+k.String(), err)
	}
	if !ok {
		return resource.Resource{}, false, nil
	}
	data := h.Inline
	if h.Blob != "" {
		data, err = s.blob(ctx, s.resDataKey(k), revMeta{Blob: h.Blob, Chunks: h.Chunks, Size: int(h.Meta.Size), SHA256: h.Meta.SHA256})
		if err != nil {
			return resource.Resource{}, false, wrap("get resource "+k.String(), err)
		}
	}
	if data == nil {
		data = []byte{}
	}
	return resource.Resource{Meta: h.Meta, Data: data}, true, nil
}

// DeleteResource removes the head and the data of k in one transaction.
func (s *Store) DeleteResource(ctx context.Context, k resource.Key) (bool, error) {
	for range casAttempts {
		_, index, exists, err := s.readResHead(ctx, k)
		if err != nil {
			return false, wrap("delete resource "+k.String(), err)
		}
		if !exists {
			return false, nil
		}
		ok, resp, _, err := s.c.KV().Txn(api.KVTxnOps{
			{Verb: api.KVCheckIndex, Key: s.resHeadKey(k), Index: index},
			{Verb: api.KVDelete, Key: s.resHeadKey(k)},
			{Verb: api.KVDeleteTree, Key: s.resDataKey(k)},
		}, s.q(ctx))
		if err != nil {
			return false, wrap("delete resource "+k.String(), err)
		}
		if ok {
			return true, nil
		}
		if len(resp.Errors) == 0 || resp.Errors[0].OpIndex != 0 {
			return false, wrap("delete resource "+k.String(), fmt.Errorf("transaction refused: %v", resp.Errors))
		}
	}
	return false, fmt.Errorf("delete resource %s: %d attempts: %w", k, casAttempts, ErrConflict)
}

// ListResources returns the metas of service (and appID when not empty) from the heads.
func (s *Store) ListResources(ctx context.Context, service, appID string) ([]resource.Meta, error) {
	prefix := s.opt.Prefix + "resource/head/" + service + "/"
	if appID != "" {
		prefix += appID + "/"
	}
	pairs, _, err := s.c.KV().List(prefix, s.q(ctx))
	if err != nil {
		return nil, wrap("list resources "+service, err)
	}
	out := []resource.Meta{}
	for _, p := range pairs {
		var h resHead
		if strings.Count(strings.TrimPrefix(p.Key, prefix), "/") > 1 || json.Unmarshal(p.Value, &h) != nil {
			continue
		}
		out = append(out, h.Meta)
	}
	resource.SortMetas(out)
	return out, nil
}
