package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are stamped by the linker (scripts/build.sh, which
// `make build` and `make deb` use: -ldflags "-X main.version=… -X
// main.commit=…"). They are never assigned at run time; a plain `go build`
// leaves them empty and buildVersion falls back on what Go recorded.
var (
	version string
	commit  string
)

// buildVersion returns the version and commit imcd was built from: the
// stamped ones, else the module version and VCS revision Go records in the
// binary, else "unknown".
func buildVersion() (v, c string) {
	v, c = version, commit
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return or(v, "unknown"), or(c, "unknown")
	}
	if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if c == "" {
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" && modified == "true" {
			rev += "-dirty"
		}
		c = rev
	}
	return or(v, "unknown"), or(c, "unknown")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// printVersion writes what `imcd -version` prints: the version, the commit,
// and the Go toolchain and platform.
func printVersion(w io.Writer) {
	v, c := buildVersion()
	fmt.Fprintf(w, "imcd %s\ncommit %s\n%s %s/%s\n", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
