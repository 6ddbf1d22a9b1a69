// Package buildinfo says which build a binary is: its version, the commit it was built
// from and the Go version. Every command prints it for --version:
//
//	if buildinfo.WantsVersion(os.Args[1:]) {
//	    fmt.Println(buildinfo.Get().String("loader"))
//	    return
//	}
//
// The version is "dev" unless the build sets it:
//
//	go build -ldflags "-X github.com/athenaserving/asf/libs/buildinfo.Version=1.4.0" ./cmd/loader
//
// The commit comes from the VCS stamp the go command embeds when it builds a module inside
// a git checkout (runtime/debug.ReadBuildInfo: vcs.revision, vcs.modified). The go command
// does not stamp builds in workspace mode (go.work), so the Makefile also sets Commit with
// -X; a build with neither reports "unknown".
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
)

// Version is the release this binary is, set at link time with -ldflags -X (the Makefile's
// VERSION); "dev" for an unreleased build.
var Version = "dev"

// Commit is the commit to report when the binary carries no VCS stamp, set at link time
// with -ldflags -X (the Makefile's COMMIT); "" when not set.
var Commit = ""

// Info describes one build.
type Info struct {
	Version   string // Version, "dev" by default
	Commit    string // vcs.revision, "unknown" without a VCS stamp
	Modified  bool   // vcs.modified: the working tree had uncommitted changes
	GoVersion string // the Go release that compiled the binary
}

// Get returns the running binary's Info.
func Get() Info {
	info := Info{Version: Version, Commit: "unknown", GoVersion: runtime.Version()}
	if Commit != "" {
		info.Commit = Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info = fromBuildInfo(info, bi)
	}
	return info
}

func fromBuildInfo(info Info, bi *debug.BuildInfo) Info {
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				info.Commit = s.Value
			}
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the --version line of command name:
// "webgate version 1.4.0 commit 6e176e5c… (modified) go1.26.0".
func (i Info) String(name string) string { return name + " version " + i.Short() }

// Short is the line without the command: "1.4.0 commit 6e176e5c… (modified) go1.26.0"
// (cobra's Version, which prints "<name> version <Version>").
func (i Info) Short() string {
	commit := i.Commit
	if i.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("%s commit %s %s", i.Version, commit, i.GoVersion)
}

// PrintIfAsked writes command name's --version line to w and reports true when args ask
// for the version; a command then exits 0.
func PrintIfAsked(w io.Writer, name string, args []string) bool {
	if !WantsVersion(args) {
		return false
	}
	fmt.Fprintln(w, Get().String(name))
	return true
}

// WantsVersion reports whether args ask for the version (-version or --version, before a
// "--" that ends the flags).
func WantsVersion(args []string) bool {
	if i := slices.Index(args, "--"); i >= 0 {
		args = args[:i]
	}
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "--version" || a == "-version" || a == "--version=true" || a == "-version=true"
	})
}
