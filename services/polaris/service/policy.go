package service

import (
	"context"
	"fmt"
	"net"
	"slices"

	"github.com/athenaserving/asf/libs/aserr"
	"github.com/athenaserving/asf/services/polaris/registry"
)

// Op names one operation of the service layer.
type Op string

// Operations. Every entrance (gRPC, admin API, console) calls them by these names.
const (
	OpRegister    Op = "registry.register"
	OpHeartbeat   Op = "registry.heartbeat"
	OpDeregister  Op = "registry.deregister"
	OpList        Op = "registry.list"
	OpWatch       Op = "registry.watch"
	OpInfo        Op = "registry.info"
	OpSetAdmin    Op = "registry.set_admin"
	OpServices    Op = "registry.services"
	OpInstances   Op = "registry.instances"
	OpConsumers   Op = "registry.consumers"
	OpConfigGet   Op = "config.get"
	OpConfigWatch Op = "config.watch"
	OpPush        Op = "config.push"
	OpHistory     Op = "config.history"
	OpRevision    Op = "config.revision"
	OpDiff        Op = "config.diff"
	OpRollback    Op = "config.rollback"
	OpDelete      Op = "config.delete"
	OpApplied     Op = "config.applied"
	OpReport      Op = "config.report_applied"
	OpFiles       Op = "config.files"
	OpResGet      Op = "resources.get"
	OpResWatch    Op = "resources.watch"
	OpResList     Op = "resources.list"
	OpResPut      Op = "resources.put"
	OpResDelete   Op = "resources.delete"
	OpWhoami      Op = "tokens.whoami"
	OpTokens      Op = "tokens.list"
	OpTokenCreate Op = "tokens.create"
	OpTokenRevoke Op = "tokens.revoke"
)

// Access is the rule an operation is authorized by.
type Access int

// Access rules, from the most open to the most closed.
const (
	// AccessRead: registry reads. Every internal service and every token.
	AccessRead Access = iota
	// AccessScoped: config and resource reads. An internal service reads its own
	// service's files (and the shared ones, the capability schemas); a loader those of
	// the service it is registered for. Every token; viewers see secrets redacted.
	AccessScoped
	// AccessSelf: registering, heartbeating, deregistering and reporting one instance.
	// An internal service for the instance at its own address; admin tokens.
	AccessSelf
	// AccessToken: operator reads of the admin API and console (summaries, history,
	// diffs, apply reports). Every token; viewers see secrets redacted.
	AccessToken
	// AccessAdmin: every change an operator makes (push, rollback, delete, admin state,
	// resources, tokens). Admin tokens only, whatever the connection.
	AccessAdmin
)

// String names the rule as docs/operations.md does.
func (a Access) String() string {
	return [...]string{"read", "scoped", "self", "token", "admin"}[a]
}

// Ops lists every operation with its access rule.
var Ops = map[Op]Access{
	OpRegister: AccessSelf, OpHeartbeat: AccessSelf, OpDeregister: AccessSelf, OpReport: AccessSelf,
	OpList: AccessRead, OpWatch: AccessRead, OpInfo: AccessRead,
	OpConfigGet: AccessScoped, OpConfigWatch: AccessScoped, OpResGet: AccessScoped, OpResWatch: AccessScoped,
	OpServices: AccessToken, OpInstances: AccessToken, OpConsumers: AccessToken, OpHistory: AccessToken,
	OpRevision: AccessToken, OpDiff: AccessToken, OpApplied: AccessToken, OpFiles: AccessToken,
	OpResList: AccessToken, OpWhoami: AccessToken,
	OpSetAdmin: AccessAdmin, OpPush: AccessAdmin, OpRollback: AccessAdmin, OpDelete: AccessAdmin,
	OpResPut: AccessAdmin, OpResDelete: AccessAdmin, OpTokens: AccessAdmin, OpTokenCreate: AccessAdmin,
	OpTokenRevoke: AccessAdmin,
}

// Request is a request to one operation.
type Request interface {
	Op() Op
}

// scoped is a request about one service's config or resources.
type scoped interface {
	scope() string
}

// selfAddr is a request about one instance address.
type selfAddr interface {
	selfAddr() string
}

// Authorize decides whether c may make req and how (see Access). It is the check every
// endpoint passes through (the authorize middleware) and the one streams use.
func (s *Service) Authorize(ctx context.Context, c Caller, req Request) (Grant, error) {
	op := req.Op()
	acc, ok := Ops[op]
	if !ok {
		return Grant{}, fmt.Errorf("operation %q: %w", op, aserr.ErrNotFound)
	}
	if c.BadToken {
		return Grant{}, fmt.Errorf("%s: unknown or revoked token: %w", op, aserr.ErrUnauthenticated)
	}
	idOK, idWhy := false, ""
	if c.HasIdentity {
		idOK, idWhy = s.identityMay(c.Identity, acc, req)
	}
	if c.HasToken {
		switch {
		case acc == AccessAdmin || acc == AccessSelf:
			if c.Token.Role.CanWrite() || idOK {
				return Grant{}, nil
			}
			return Grant{}, fmt.Errorf("%s: %s token %s may not change anything: %w", op, c.Token.Role, c.Token.ID, aserr.ErrForbidden)
		default:
			return Grant{Redact: !c.Token.Role.CanWrite() && !idOK}, nil
		}
	}
	if c.HasIdentity {
		if idOK {
			return Grant{}, nil
		}
		return Grant{}, fmt.Errorf("%s: %s/%s %s: %w", op, c.Identity.Service, c.Identity.Instance, idWhy, aserr.ErrForbidden)
	}
	if c.Plaintext && s.o.Insecure {
		if acc == AccessAdmin {
			return Grant{}, fmt.Errorf("%s needs an admin token (authorization: Bearer): %w", op, aserr.ErrUnauthenticated)
		}
		return Grant{}, nil
	}
	return Grant{}, fmt.Errorf("%s needs a client certificate or a token: %w", op, aserr.ErrUnauthenticated)
}

// identityMay applies the rules of an internal service; why says what is missing.
func (s *Service) identityMay(id Identity, acc Access, req Request) (bool, string) {
	switch acc {
	case AccessRead:
		return true, ""
	case AccessScoped:
		sc, ok := req.(scoped)
		if !ok || s.inScope(id, sc.scope()) {
			return true, ""
		}
		return false, fmt.Sprintf("may not read service %q", sc.scope())
	case AccessSelf:
		if sa, ok := req.(selfAddr); ok && !addrMatches(id.Instance, sa.selfAddr()) {
			return false, fmt.Sprintf("may only act for its own instance, not %q", sa.selfAddr())
		}
		if svc, ok := s.providerOf(req); ok && id.Service != providerService && id.Service != svc {
			return false, fmt.Sprintf("may not act for a provider of %q (only a %s, or %s itself)", svc, providerService, svc)
		}
		if sc, ok := req.(scoped); ok && !s.inScope(id, sc.scope()) {
			return false, fmt.Sprintf("may not read service %q", sc.scope())
		}
		return true, ""
	}
	return false, "needs an admin token"
}

// inScope tells whether id reads the config and resources of service svc: its own
// service, a shared config service (capability schemas), or the service of a provider
// registered at its address (a loader's engine service).
func (s *Service) inScope(id Identity, svc string) bool {
	if svc == id.Service || slices.Contains(s.o.SharedConfig, svc) {
		return true
	}
	if id.Service != providerService {
		return false
	}
	for _, st := range s.o.Registry.List(svc) {
		if st.Instance.Kind != registry.KindConsumer && addrMatches(id.Instance, st.Instance.Addr) {
			return true
		}
	}
	return false
}

// providerService is the identity service of the processes that serve capabilities: a
// loader's certificate registers, heartbeats or deregisters providers of any capability
// service, and reads the config and resources of the services it is registered for. Any
// other internal service acts only for providers of its own name (an lbclient registers
// as a provider of "lbclient", for atom to find it) and for consumer records.
const providerService = "loader"

// providerOf returns the service of the provider instance req registers, heartbeats or
// deregisters; ok is false for a consumer's record and for anything else.
func (s *Service) providerOf(req Request) (service string, ok bool) {
	var key registry.Key
	switch r := req.(type) {
	case RegisterRequest:
		return r.Instance.Service, r.Instance.Kind != registry.KindConsumer
	case HeartbeatRequest:
		key = r.Key
	case DeregisterRequest:
		key = r.Key
	default:
		return "", false
	}
	for _, st := range s.o.Registry.List(key.Service) {
		if st.Instance.Addr == key.Addr {
			return key.Service, st.Instance.Kind != registry.KindConsumer
		}
	}
	return "", false
}

// anyInstance is the instance of a tier certificate (spiffe://asf/<service>/*): one
// certificate shared by every replica of a service, as docker-compose and Helm issue them
// where replicas come and go with addresses nobody knows in advance. It acts for any
// instance of its service; per-replica certificates (the host or host:port as instance)
// narrow that to the replica's own address.
const anyInstance = "*"

// addrMatches tells whether a certificate's instance name covers addr: the same
// host:port, the host alone (a certificate issued for a host covers every port on it), or
// anyInstance.
func addrMatches(instance, addr string) bool {
	if instance == "" || addr == "" {
		return false
	}
	if instance == addr || instance == anyInstance {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host == instance
}

// OpOnly is a request that names only its operation: transports use it to check a
// token's role before reading a request body (the endpoint checks the full request).
type OpOnly Op

// Op returns the operation.
func (o OpOnly) Op() Op { return Op(o) }
