package adminapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/service"
)

func keyOf(r *http.Request) config.Key {
	return config.Key{Project: r.PathValue("project"), Group: r.PathValue("group"), Service: r.PathValue("service"),
		Version: r.PathValue("version"), File: r.PathValue("file")}
}

func (a *API) files(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	fs, err := service.Do[[]service.FileSummary](ctx, a.o.Endpoints, service.FilesRequest{Filter: config.Key{Project: q.Get("project"), Group: q.Get("group"),
		Service: q.Get("service"), Version: q.Get("version")}})
	if err != nil {
		return nil, err
	}
	return map[string]any{"files": fs}, nil
}

// FileView is a config revision as the API shows it: the content as text when it is
// UTF-8, else base64.
type FileView struct {
	Key           config.Key `json:"key"`
	Revision      int64      `json:"revision"`
	Created       time.Time  `json:"created"`
	Comment       string     `json:"comment,omitempty"`
	GrayGroup     string     `json:"gray_group,omitempty"`
	Gray          bool       `json:"gray,omitempty"`
	Content       *string    `json:"content,omitempty"`
	ContentBase64 string     `json:"content_base64,omitempty"`
}

// ViewOf converts a revision to its API view.
func ViewOf(f config.File) FileView {
	v := FileView{Key: f.Key, Revision: f.Revision, Created: f.Created, Comment: f.Comment, GrayGroup: f.GrayGroup, Gray: f.Gray}
	if utf8.Valid(f.Content) {
		s := string(f.Content)
		v.Content = &s
	} else {
		v.ContentBase64 = base64.StdEncoding.EncodeToString(f.Content)
	}
	return v
}

func (a *API) fileView(ctx context.Context, req service.Request) (any, error) {
	f, err := service.Do[config.File](ctx, a.o.Endpoints, req)
	if err != nil {
		return nil, err
	}
	return ViewOf(f), nil
}

func (a *API) getFile(ctx context.Context, r *http.Request) (any, error) {
	caller := config.Caller{}
	if g := r.URL.Query().Get("gray"); g != "" {
		caller.Labels = map[string]string{config.GrayLabel: g}
	}
	return a.fileView(ctx, service.GetConfigRequest{Key: keyOf(r), Caller: caller})
}

// PushRequest is the body of a push.
type PushRequest struct {
	Content       *string `json:"content"`
	ContentBase64 *string `json:"content_base64"`
	Comment       string  `json:"comment"`
	GrayGroup     string  `json:"gray_group"`
}

func (a *API) push(ctx context.Context, r *http.Request) (any, error) {
	var req PushRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	var content []byte
	switch {
	case req.Content != nil && req.ContentBase64 == nil:
		content = []byte(*req.Content)
	case req.ContentBase64 != nil && req.Content == nil:
		b, err := base64.StdEncoding.DecodeString(*req.ContentBase64)
		if err != nil {
			return nil, fmt.Errorf("content_base64: %v: %w", err, aserr.ErrBadRequest)
		}
		content = b
	default:
		return nil, fmt.Errorf("exactly one of content and content_base64 is required: %w", aserr.ErrInvalidParam)
	}
	return a.fileView(ctx, service.PushRequest{Key: keyOf(r), Content: content, Comment: req.Comment, GrayGroup: req.GrayGroup})
}

func (a *API) deleteFile(ctx context.Context, r *http.Request) (any, error) {
	k := keyOf(r)
	if _, err := service.Do[struct{}](ctx, a.o.Endpoints, service.DeleteRequest{Key: k}); err != nil {
		return nil, err
	}
	return map[string]any{"deleted": k}, nil
}

func (a *API) history(ctx context.Context, r *http.Request) (any, error) {
	k := keyOf(r)
	h, err := service.Do[service.HistoryResponse](ctx, a.o.Endpoints, service.HistoryRequest{Key: k})
	if err != nil {
		return nil, err
	}
	out := make([]FileView, 0, len(h.Revisions))
	for _, f := range h.Revisions {
		out = append(out, ViewOf(f))
	}
	return map[string]any{"key": k, "current": h.Summary.Current, "gray": h.Summary.Gray, "revisions": out}, nil
}

func parseRev(s, name string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q is not a revision number: %w", name, s, aserr.ErrInvalidParam)
	}
	return n, nil
}

func (a *API) revision(ctx context.Context, r *http.Request) (any, error) {
	n, err := parseRev(r.PathValue("rev"), "rev")
	if err != nil {
		return nil, err
	}
	return a.fileView(ctx, service.RevisionRequest{Key: keyOf(r), Revision: n})
}

func (a *API) diff(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	from, err := parseRev(q.Get("from"), "from")
	if err != nil {
		return nil, err
	}
	to, err := parseRev(q.Get("to"), "to")
	if err != nil {
		return nil, err
	}
	return service.Do[service.DiffView](ctx, a.o.Endpoints, service.DiffRequest{Key: keyOf(r), From: from, To: to})
}

func (a *API) rollback(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		Revision int64 `json:"revision"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return a.fileView(ctx, service.RollbackRequest{Key: keyOf(r), Revision: req.Revision})
}

func (a *API) applied(ctx context.Context, r *http.Request) (any, error) {
	k := keyOf(r)
	reps, err := service.Do[[]config.Applied](ctx, a.o.Endpoints, service.AppliedRequest{Key: k})
	if err != nil {
		return nil, err
	}
	return map[string]any{"key": k, "reports": reps}, nil
}
