//go:build tools

// Package consulbuild pins the Consul agent v1.14.11 (MPL-2.0; later versions are under a
// different licence) and its dependencies for the consul image (deploy/images/Dockerfile).
package consulbuild

import _ "github.com/hashicorp/consul"
