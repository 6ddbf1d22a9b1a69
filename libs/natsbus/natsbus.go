// Package natsbus holds what services share around NATS: an in-process NATS server for
// the embedded deployment and tests, a client connection that reconnects forever, and
// the subject names of the control-plane events.
//
//	emb, err := natsbus.StartEmbedded("127.0.0.1:0", log)
//	if err != nil { return err }
//	defer emb.Shutdown()
//	nc, err := natsbus.Connect(emb.ClientURL(), "polaris", log)
//	if err != nil { return err }
//	defer nc.Close()
//	_ = nc.Publish(natsbus.LoadSubject("asf", "echo"), payload)
package natsbus

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// ReconnectWait is the pause between two reconnect attempts of a Connect connection.
const ReconnectWait = 500 * time.Millisecond

// reconnectLogEvery is how many failed connect attempts in a row give one log line
// after the first (about 30 s at ReconnectWait).
const reconnectLogEvery = 60

// readyTimeout bounds how long StartEmbedded waits for the server to accept clients.
const readyTimeout = 10 * time.Second

// Embedded is a NATS server running inside this process.
type Embedded struct {
	srv *server.Server
	log zerolog.Logger
	tls bool // clients must use TLS: ClientURL is tls://
}

// EmbeddedOption configures StartEmbedded.
type EmbeddedOption func(*server.Options) error

// WithUsers makes the server accept only users (nkeys), each with the subject
// permissions of its service under prefix (see Permissions). Without it the server
// accepts any client.
func WithUsers(prefix string, users ...User) EmbeddedOption {
	return func(o *server.Options) error {
		nu, err := serverUsers(users, prefix)
		if err != nil {
			return err
		}
		o.Nkeys = append(o.Nkeys, nu...)
		return nil
	}
}

// StartEmbedded starts a NATS server listening on listen (host:port; port 0 picks a free
// port) and returns once it accepts clients. Without WithUsers it accepts any client and
// logs a warning.
func StartEmbedded(listen string, log zerolog.Logger, opts ...EmbeddedOption) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen %q: port: %w", listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	sopts := &server.Options{
		ServerName: "asf-embedded",
		Host:       host,
		Port:       port,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	for _, o := range opts {
		if err := o(sopts); err != nil {
			return nil, fmt.Errorf("nats server: %w", err)
		}
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go srv.Start() // owned by srv: Shutdown stops it and WaitForShutdown waits for it
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("nats server on %s not ready within %s", listen, readyTimeout)
	}
	e := &Embedded{srv: srv, log: log, tls: sopts.TLSConfig != nil}
	if len(sopts.Nkeys) == 0 {
		log.Warn().Str("url", e.ClientURL()).Msg("embedded nats started without authorization: any client that reaches it may publish and subscribe")
	} else {
		log.Info().Str("url", e.ClientURL()).Int("users", len(sopts.Nkeys)).Msg("embedded nats started")
	}
	return e, nil
}

// ClientURL is the nats:// URL clients connect to (tls:// when the server requires
// TLS, see WithTLS). A wildcard listen host is reported as 127.0.0.1 so the URL is
// dialable from this machine.
func (e *Embedded) ClientURL() string {
	addr := e.srv.Addr()
	if addr == nil {
		return ""
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "nats://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "nats://"
	if e.tls {
		scheme = "tls://" // clients must use TLS
	}
	return scheme + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// Shutdown stops the server and waits until it has stopped. It is safe to call twice.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Connect dials url as a client named name. The connection reconnects forever, every
// ReconnectWait, and logs disconnects, reconnects and asynchronous errors. The first
// dial retries as well (RetryOnFailedConnect), so a NATS server that is not up yet
// does not fail the caller. opts are applied after these defaults.
func Connect(url, name string, log zerolog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	l := log.With().Str("nats", url).Logger()
	var failures atomic.Int64
	base := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(ReconnectWait),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				l.Warn().Err(err).Msg("nats disconnected")
				return
			}
			l.Debug().Msg("nats disconnected")
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			failures.Store(0)
			l.Info().Str("server", c.ConnectedUrlRedacted()).Msg("nats reconnected")
		}),
		// A refused credential or an unreachable server fails every attempt: log the
		// first failure and then one in reconnectLogEvery, so the reason stays visible.
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if n := failures.Add(1); n%reconnectLogEvery == 1 {
				l.Warn().Err(err).Int64("attempts", n).Msg("nats connect failed; retrying")
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := l.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats async error")
		}),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", url, err)
	}
	return nc, nil
}

// LoadSubject is the subject of the load reports of service: <prefix>.load.<service>.
func LoadSubject(prefix, service string) string { return subject(prefix, "load", service) }

// RegistrySubject is the subject of the membership events of service:
// <prefix>.registry.<service>.
func RegistrySubject(prefix, service string) string { return subject(prefix, "registry", service) }

// ConfigSubject is the subject of the config events of service: <prefix>.config.<service>.
func ConfigSubject(prefix, service string) string { return subject(prefix, "config", service) }

// ResourceSubject is the subject of the personalisation resource changes of service:
// <prefix>.resource.<service>.
func ResourceSubject(prefix, service string) string { return subject(prefix, "resource", service) }

// subject joins the parts. A service of "" or "*" gives the wildcard "*" (and ">" stays
// ">") so callers can subscribe to every service. Characters that NATS treats as
// separators or wildcards inside a service name are replaced by "_" so that one service
// name is always exactly one subject token.
func subject(prefix, kind, service string) string {
	if prefix == "" {
		prefix = "asf"
	}
	return prefix + "." + kind + "." + token(service)
}

func token(s string) string {
	switch s {
	case "", "*":
		return "*"
	case ">":
		return ">"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}
