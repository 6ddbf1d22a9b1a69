package admin

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Key names a config file: project/group/service/version/file.
type Key struct {
	Project string `json:"project"`
	Group   string `json:"group"`
	Service string `json:"service"`
	Version string `json:"version"`
	File    string `json:"file"`
}

// String is the key's path form.
func (k Key) String() string {
	return strings.Join([]string{k.Project, k.Group, k.Service, k.Version, k.File}, "/")
}

// Default project and group of the short key form.
const (
	DefaultProject = "asf"
	DefaultGroup   = "default"
)

// ParseKey reads "project/group/service/version/file" or the short
// "service/version/file" (project asf, group default).
func ParseKey(s string) (Key, error) {
	p := strings.Split(strings.Trim(s, "/"), "/")
	for _, x := range p {
		if x == "" {
			return Key{}, fmt.Errorf("config key %q: an empty part; want project/group/service/version/file or service/version/file", s)
		}
	}
	switch len(p) {
	case 5:
		return Key{p[0], p[1], p[2], p[3], p[4]}, nil
	case 3:
		return Key{DefaultProject, DefaultGroup, p[0], p[1], p[2]}, nil
	}
	return Key{}, fmt.Errorf("config key %q: want project/group/service/version/file or service/version/file", s)
}

func (k Key) path() string {
	parts := []string{k.Project, k.Group, k.Service, k.Version, k.File}
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/api/v1/config/files/" + strings.Join(parts, "/")
}

// File is a config revision: its content as text (or base64 when not UTF-8).
type File struct {
	Key           Key       `json:"key"`
	Revision      int64     `json:"revision"`
	Created       time.Time `json:"created"`
	Comment       string    `json:"comment,omitempty"`
	GrayGroup     string    `json:"gray_group,omitempty"`
	Gray          bool      `json:"gray,omitempty"`
	Content       *string   `json:"content,omitempty"`
	ContentBase64 string    `json:"content_base64,omitempty"`
}

// Bytes is the revision's content.
func (f File) Bytes() []byte {
	if f.Content != nil {
		return []byte(*f.Content)
	}
	b, _ := base64.StdEncoding.DecodeString(f.ContentBase64)
	return b
}

// FileSummary is a file in a listing.
type FileSummary struct {
	Key       Key              `json:"key"`
	Current   int64            `json:"current"`
	Revisions int              `json:"revisions"`
	Gray      map[string]int64 `json:"gray,omitempty"`
	Updated   string           `json:"updated,omitempty"`
}

// Files lists the files matching filter (empty parts match everything).
func (c *Client) Files(ctx context.Context, filter Key) ([]FileSummary, error) {
	q := url.Values{}
	for k, v := range map[string]string{"project": filter.Project, "group": filter.Group, "service": filter.Service, "version": filter.Version} {
		if v != "" {
			q.Set(k, v)
		}
	}
	p := "/api/v1/config/files"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var r struct {
		Files []FileSummary `json:"files"`
	}
	return r.Files, c.do(ctx, http.MethodGet, p, nil, &r)
}

// Get returns the current revision of k (gray group g's when g is not empty).
func (c *Client) Get(ctx context.Context, k Key, gray string) (File, error) {
	p := k.path()
	if gray != "" {
		p += "?gray=" + url.QueryEscape(gray)
	}
	var f File
	return f, c.do(ctx, http.MethodGet, p, nil, &f)
}

// Revision returns revision rev of k.
func (c *Client) Revision(ctx context.Context, k Key, rev int64) (File, error) {
	var f File
	return f, c.do(ctx, http.MethodGet, k.path()+"/revisions/"+strconv.FormatInt(rev, 10), nil, &f)
}

// Push stores content as a new revision of k (for gray group gray when not empty).
func (c *Client) Push(ctx context.Context, k Key, content []byte, comment, gray string) (File, error) {
	body := map[string]any{"comment": comment}
	if gray != "" {
		body["gray_group"] = gray
	}
	if isText(content) {
		body["content"] = string(content)
	} else {
		body["content_base64"] = base64.StdEncoding.EncodeToString(content)
	}
	var f File
	return f, c.do(ctx, http.MethodPut, k.path(), body, &f)
}

func isText(b []byte) bool {
	return strings.ToValidUTF8(string(b), "\uFFFD") == string(b)
}

// Delete removes k and its history.
func (c *Client) Delete(ctx context.Context, k Key) error {
	return c.do(ctx, http.MethodDelete, k.path(), nil, nil)
}

// History is every revision of a file.
type History struct {
	Key       Key              `json:"key"`
	Current   int64            `json:"current"`
	Gray      map[string]int64 `json:"gray,omitempty"`
	Revisions []File           `json:"revisions"`
}

// History returns k's revisions.
func (c *Client) History(ctx context.Context, k Key) (History, error) {
	var h History
	return h, c.do(ctx, http.MethodGet, k.path()+"/history", nil, &h)
}

// Diff is a line diff of two revisions.
type Diff struct {
	Key     Key    `json:"key"`
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	Added   int    `json:"added"`
	Removed int    `json:"removed"`
	Unified string `json:"unified"`
}

// Diff compares revisions from and to of k.
func (c *Client) Diff(ctx context.Context, k Key, from, to int64) (Diff, error) {
	var d Diff
	return d, c.do(ctx, http.MethodGet, fmt.Sprintf("%s/diff?from=%d&to=%d", k.path(), from, to), nil, &d)
}

// Rollback pushes revision rev's content again as a new revision.
func (c *Client) Rollback(ctx context.Context, k Key, rev int64) (File, error) {
	var f File
	return f, c.do(ctx, http.MethodPost, k.path()+"/rollback", map[string]any{"revision": rev}, &f)
}
