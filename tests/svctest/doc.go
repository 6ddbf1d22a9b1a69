// Package svctest checks that the services' test packages (polaristest, loadertest,
// lbclienttest, atomtest, webgatetest) compose into a working request path. It has no code
// of its own; see the _test.go files.
package svctest
