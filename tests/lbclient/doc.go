// Package lbclient holds lbclient's cross-service tests: real in-process polaris (with its
// NATS bus), real loaders and one or more lbclient replicas on 127.0.0.1:0. It has no code
// of its own; see the _test.go files.
package lbclient
