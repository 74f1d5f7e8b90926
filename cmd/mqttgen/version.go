package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionLine is what --version prints: the module version, the commit the
// binary was built from (and whether the tree had changes), the Go release
// and the platform.
func versionLine() string {
	v := buildVersion()
	commit, modified := "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	switch {
	case commit != "" && modified:
		v += fmt.Sprintf(" (commit %s, with local changes)", commit)
	case commit != "":
		v += fmt.Sprintf(" (commit %s)", commit)
	}
	return fmt.Sprintf("%s, %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
