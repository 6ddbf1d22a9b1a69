package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/adminapi/auth"
	"github.com/athenaserving/asf/services/polaris/config"
	"github.com/athenaserving/asf/services/polaris/registry"
	"github.com/athenaserving/asf/services/polaris/service"
)

func (c *Console) servicesPage(w http.ResponseWriter, r *http.Request, p page) {
	p.Title, p.Nav = "Services", "services"
	sums, err := service.Do[[]service.ServiceSummary](r.Context(), c.o.Endpoints, service.ServicesRequest{})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	consumers, err := service.Do[[]registry.State](r.Context(), c.o.Endpoints, service.ConsumersRequest{})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	p.Data = map[string]any{"Services": sums, "Consumers": consumers}
	c.render(w, http.StatusOK, "services", p)
}

func (c *Console) servicePage(w http.ResponseWriter, r *http.Request, p page) {
	svc := r.PathValue("service")
	p.Title, p.Nav = "Service "+svc, "services"
	sts, err := service.Do[[]registry.State](r.Context(), c.o.Endpoints, service.InstancesRequest{Service: svc})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	var prov, cons []registry.State
	for _, st := range sts {
		if st.Instance.Kind == registry.KindConsumer {
			cons = append(cons, st)
		} else {
			prov = append(prov, st)
		}
	}
	p.Data = map[string]any{"Service": svc, "Providers": prov, "Consumers": cons}
	c.render(w, http.StatusOK, "service", p)
}

func (c *Console) setAdmin(w http.ResponseWriter, r *http.Request, p page) {
	svc := r.PathValue("service")
	f := r.PostForm
	req := service.SetAdminRequest{Key: registry.Key{Service: svc, Addr: f.Get("addr")}}
	if v := f.Get("enabled"); v != "" {
		b := v == "true"
		req.Enabled = &b
	}
	if v := f.Get("weight"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			c.fail(w, p, fmt.Errorf("weight %q is not a number: %w", v, aserr.ErrInvalidParam))
			return
		}
		w32 := int32(n)
		req.Weight = &w32
	}
	adm, err := service.Do[registry.Admin](r.Context(), c.o.Endpoints, req)
	if err != nil {
		c.fail(w, p, err)
		return
	}
	k := req.Key
	redirectMsg(w, r, "/ui/services/"+url.PathEscape(svc), fmt.Sprintf("%s: enabled=%t weight=%d", k.Addr, adm.Enabled, adm.Weight))
}

func (c *Console) configPage(w http.ResponseWriter, r *http.Request, p page) {
	q := r.URL.Query()
	filter := config.Key{Project: q.Get("project"), Group: q.Get("group"), Service: q.Get("service"), Version: q.Get("version")}
	p.Title, p.Nav = "Config files", "config"
	files, err := service.Do[[]service.FileSummary](r.Context(), c.o.Endpoints, service.FilesRequest{Filter: filter})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	p.Data = map[string]any{"Filter": filter, "Files": files}
	c.render(w, http.StatusOK, "config", p)
}

// revRow is one history row of the file page.
type revRow struct {
	config.File
	Prev    int64
	Current bool
}

func (c *Console) filePage(w http.ResponseWriter, r *http.Request, p page) {
	k := keyFrom(r.URL.Query())
	p.Title, p.Nav = "File "+k.File, "config"
	h, err := service.Do[service.HistoryResponse](r.Context(), c.o.Endpoints, service.HistoryRequest{Key: k})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	applied, err := service.Do[[]config.Applied](r.Context(), c.o.Endpoints, service.AppliedRequest{Key: k})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	revs, sum := h.Revisions, h.Summary
	rows := make([]revRow, 0, len(revs))
	var current config.File
	for i := len(revs) - 1; i >= 0; i-- {
		row := revRow{File: revs[i], Current: revs[i].Revision == sum.Current}
		if i > 0 {
			row.Prev = revs[i-1].Revision
		}
		if row.Current {
			current = revs[i]
		}
		rows = append(rows, row)
	}
	groups := make([]string, 0, len(sum.Gray))
	for g := range sum.Gray {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	type grayRow struct {
		Group    string
		Revision int64
	}
	gray := make([]grayRow, 0, len(groups))
	for _, g := range groups {
		gray = append(gray, grayRow{g, sum.Gray[g]})
	}
	p.Data = map[string]any{
		"Key": k, "Summary": sum, "Revisions": rows, "Current": current,
		"Gray": gray, "Applied": applied,
	}
	c.render(w, http.StatusOK, "file", p)
}

func (c *Console) diffPage(w http.ResponseWriter, r *http.Request, p page) {
	q := r.URL.Query()
	k := keyFrom(q)
	p.Title, p.Nav = "Diff "+k.File, "config"
	from, err1 := strconv.ParseInt(q.Get("from"), 10, 64)
	to, err2 := strconv.ParseInt(q.Get("to"), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		c.fail(w, p, fmt.Errorf("from and to must be revision numbers: %w", aserr.ErrInvalidParam))
		return
	}
	d, err := service.Do[service.DiffView](r.Context(), c.o.Endpoints, service.DiffRequest{Key: k, From: from, To: to})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	p.Data = d
	c.render(w, http.StatusOK, "diff", p)
}

func (c *Console) push(w http.ResponseWriter, r *http.Request, p page) {
	f := r.PostForm
	k := keyFrom(f)
	content := strings.ReplaceAll(f.Get("content"), "\r\n", "\n") // browsers send CRLF
	file, err := service.Do[config.File](r.Context(), c.o.Endpoints, service.PushRequest{Key: k, Content: []byte(content),
		Comment: f.Get("comment"), GrayGroup: strings.TrimSpace(f.Get("gray_group"))})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	msg := fmt.Sprintf("pushed revision %d", file.Revision)
	if file.GrayGroup != "" {
		msg += " to gray group " + file.GrayGroup
	}
	redirectMsg(w, r, "/ui/config/file?"+string(keyQuery(k)), msg)
}

func (c *Console) rollback(w http.ResponseWriter, r *http.Request, p page) {
	k := keyFrom(r.PostForm)
	rev, err := strconv.ParseInt(r.PostForm.Get("revision"), 10, 64)
	if err != nil {
		c.fail(w, p, fmt.Errorf("revision is not a number: %w", aserr.ErrInvalidParam))
		return
	}
	file, err := service.Do[config.File](r.Context(), c.o.Endpoints, service.RollbackRequest{Key: k, Revision: rev})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	redirectMsg(w, r, "/ui/config/file?"+string(keyQuery(k)), fmt.Sprintf("rolled back to revision %d as revision %d", rev, file.Revision))
}

func (c *Console) deleteFile(w http.ResponseWriter, r *http.Request, p page) {
	k := keyFrom(r.PostForm)
	if _, err := service.Do[struct{}](r.Context(), c.o.Endpoints, service.DeleteRequest{Key: k}); err != nil {
		c.fail(w, p, err)
		return
	}
	redirectMsg(w, r, "/ui/config", "deleted "+k.String())
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, p page) {
	p.Title, p.Nav = "Tokens", "tokens"
	toks, err := service.Do[[]auth.Token](r.Context(), c.o.Endpoints, service.TokensRequest{})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	p.Data = map[string]any{"Tokens": toks}
	c.render(w, http.StatusOK, "tokens", p)
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, p page) {
	created, err := service.Do[service.TokenCreated](r.Context(), c.o.Endpoints,
		service.TokenCreateRequest{Name: r.PostForm.Get("name"), Role: auth.Role(r.PostForm.Get("role"))})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	toks, err := service.Do[[]auth.Token](r.Context(), c.o.Endpoints, service.TokensRequest{})
	if err != nil {
		c.fail(w, p, err)
		return
	}
	// The secret is shown in this answer only; it is not put in a redirect URL.
	p.Title, p.Nav = "Tokens", "tokens"
	p.Data = map[string]any{"Tokens": toks, "Secret": created.Secret, "Created": created.Token}
	c.render(w, http.StatusOK, "tokens", p)
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, p page) {
	id := r.PostForm.Get("id")
	if _, err := service.Do[struct{}](r.Context(), c.o.Endpoints, service.TokenRevokeRequest{ID: id}); err != nil {
		c.fail(w, p, err)
		return
	}
	redirectMsg(w, r, "/ui/tokens", "revoked "+id)
}
