// Package layering checks the import rules of docs/architecture.md ("Layers") on every
// package of every module that go.work uses:
//
//   - libs and sdk import no service, tool or test package;
//   - a service imports only libs, sdk and itself (services meet over gRPC and NATS, never in
//     Go; the public client SDK may serve a service that calls another deployment's edge);
//   - a service's domain packages import no transport: not net/http, google.golang.org/grpc,
//     NATS or github.com/gorilla/websocket, nor the service's own transport (or any package
//     under it, such as webgate's transport/ws) or root package. Everything under
//     services/<svc>/ is domain except the root package (the embeddable server that binds
//     listeners), cmd/, transport/, test-support packages (named *test) and the adapters
//     listed in Adapters, each with the reason it talks to another process.
//
// The rules are data (Rules, Adapters) and Check is a pure function over a package list, so
// the rules themselves are tested on made-up packages as well as on the real tree.
package layering
