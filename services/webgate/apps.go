package webgate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/athenaserving/asf/libs/capability/capwatch"
	polarispb "github.com/athenaserving/asf/libs/proto/polaris/v1"
	"github.com/athenaserving/asf/services/webgate/auth"
	"github.com/rs/zerolog"
)

// demoApp parses --demo-app (app_id:api_key:api_secret, or "generate"); nil when unset.
func demoApp(spec string, log zerolog.Logger) (*auth.App, error) {
	switch spec {
	case "":
		return nil, nil
	case "generate":
		app := &auth.App{ID: "demo" + randHex(4), APIKey: randHex(16), APISecret: randHex(16)}
		log.Warn().Str("app_id", app.ID).Str("api_key", app.APIKey).Str("api_secret", app.APISecret).
			Msg("demo app generated (local development only)")
		return app, nil
	}
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, fmt.Errorf("webgate: demo-app %q: want app_id:api_key:api_secret or generate", "<redacted>")
	}
	log.Warn().Str("app_id", parts[0]).Msg("demo app in use while no apps config exists (local development only)")
	return &auth.App{ID: parts[0], APIKey: parts[1], APISecret: parts[2]}, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// appsWatcher keeps the authenticator's app set in step with the apps file in polaris. A
// revision that fails to parse keeps the previous set and is reported applied=false;
// without the file the demo app (if any) is the only app. Every applied set is enforced
// on open connections (a lowered max_sessions closes the excess ones).
type appsWatcher struct {
	client  polarispb.ConfigClient
	key     *polarispb.ConfigKey
	opts    capwatch.Options
	authn   *auth.Authenticator
	limiter *auth.Limiter
	demo    *auth.App
	log     zerolog.Logger

	synced chan struct{}
	once   bool
	rev    int64
}

func newAppsWatcher(client polarispb.ConfigClient, key *polarispb.ConfigKey, opts capwatch.Options,
	authn *auth.Authenticator, limiter *auth.Limiter, demo *auth.App, log zerolog.Logger) *appsWatcher {
	return &appsWatcher{client: client, key: key, opts: opts, authn: authn, limiter: limiter, demo: demo,
		log: log.With().Str("component", "apps-watcher").Logger(), synced: make(chan struct{}), rev: -1}
}

// Run watches until ctx ends.
func (w *appsWatcher) Run(ctx context.Context) {
	_ = capwatch.Loop(ctx, w.client, w.key, false, w.opts, w.log, func(ev *polarispb.ConfigEvent) { w.apply(ctx, ev) })
}

func (w *appsWatcher) apply(ctx context.Context, ev *polarispb.ConfigEvent) {
	var file *polarispb.ConfigFile
	for _, f := range ev.GetFiles() {
		if f.GetKey().GetFile() == w.key.GetFile() {
			file = f
		}
	}
	switch {
	case ev.GetType() == polarispb.ConfigEvent_TYPE_REMOVED || (ev.GetType() == polarispb.ConfigEvent_TYPE_SNAPSHOT && file == nil):
		w.setDemo()
	case file != nil && file.GetRevision() != w.rev:
		set, err := auth.ParseApps(file.GetContent())
		if err != nil {
			w.log.Error().Err(err).Int64("revision", file.GetRevision()).Msg("apps config rejected; the previous apps stay")
			w.report(ctx, file, false, err.Error())
			break
		}
		w.rev = file.GetRevision()
		w.authn.SetApps(set)
		kicked := w.limiter.Enforce(set)
		w.log.Info().Int("apps", set.Len()).Int64("revision", file.GetRevision()).Int("connections_closed", kicked).Msg("apps config applied")
		w.report(ctx, file, true, "")
	}
	if !w.once {
		w.once = true
		close(w.synced)
	}
}

func (w *appsWatcher) setDemo() {
	w.rev = -1
	set := &auth.AppSet{}
	if w.demo != nil {
		set, _ = auth.NewAppSet(w.demo)
	}
	w.authn.SetApps(set)
	w.log.Info().Bool("demo_app", w.demo != nil).Msg("no apps config: only the demo app, if any, is accepted")
}

func (w *appsWatcher) report(ctx context.Context, f *polarispb.ConfigFile, applied bool, reason string) {
	if _, err := w.client.ReportApplied(ctx, &polarispb.ReportAppliedRequest{
		Key: f.GetKey(), Revision: f.GetRevision(), Caller: w.opts.Caller, Applied: applied, Reason: reason,
	}); err != nil && ctx.Err() == nil {
		w.log.Warn().Err(err).Msg("report applied")
	}
}
