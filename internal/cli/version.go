// version.go is what this binary says it is: `vltava version`, `vltava --version`, the
// server's start-up line, `cluster info`, and the client software version (KIP-511) the
// tools send to brokers. It comes from the build information Go stamps into every binary:
// the module version for `go install ...@vX`, and the VCS revision, commit time and
// modified flag for a `go build` in a git checkout.
package cli

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

// BuildVersion is what the build information says about this binary.
type BuildVersion struct {
	Module    string // the main module's version: vX.Y.Z, or (devel) for a local build
	Revision  string // vcs.revision: the commit, when built in a checkout
	Time      string // vcs.time: the commit's time (RFC 3339)
	Modified  bool   // vcs.modified: the work tree had uncommitted changes
	GoVersion string
}

// Version reads the build information of the running binary.
func Version() BuildVersion {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return BuildVersion{Module: "(unknown)"}
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) BuildVersion {
	v := BuildVersion{Module: bi.Main.Version, GoVersion: bi.GoVersion}
	if v.Module == "" {
		v.Module = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is one line: "v1.2.3" or "(devel) commit 0123abcd4567 (2026-12-04T18:00:00Z,
// modified)", then the Go version. A build without VCS information says so, since a bare
// "(devel)" tells the operator nothing about which code is running.
func (v BuildVersion) String() string {
	var b strings.Builder
	b.WriteString(v.Module)
	switch {
	case v.Revision != "":
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " commit %s", rev)
		var notes []string
		if v.Time != "" {
			notes = append(notes, v.Time)
		}
		if v.Modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
		}
	case v.Module == "(devel)":
		b.WriteString(" (no commit recorded: built with -buildvcs=false or outside a git checkout)")
	}
	if v.GoVersion != "" {
		b.WriteString(", " + v.GoVersion)
	}
	return b.String()
}

// softwareVersion is the client software version sent in ApiVersions (KIP-511), which
// allows only [a-zA-Z0-9.-]: the module version, or the commit for a local build.
func softwareVersion() string {
	v := Version()
	s := v.Module
	if v.Revision != "" && !strings.HasPrefix(s, "v") {
		s = v.Revision
		if len(s) > 12 {
			s = s[:12]
		}
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return -1
	}, s)
	if s == "" {
		return "devel"
	}
	return s
}

func (e Env) version(_ context.Context, args []string) error {
	fs := e.plainFlagSet("version", "")
	rest, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, rest); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "vltava %s\n", Version())
	return nil
}
