package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// version, when set at link time (-ldflags "-X main.version=v1.2.0", as
// the Dockerfile does from its VERSION argument), names the build in place
// of the module version, which a build without the repository's history
// (a Docker build context without .git) does not know.
var version string

// build describes the binary: its module version ("(devel)" when built
// from a checkout), the commit it was built from when the build knew it
// (with "-dirty" for uncommitted changes), and the Go release.
type build struct {
	version, revision, goVersion string
}

// readBuild reads the binary's build information.
func readBuild() build {
	b := build{version: "(devel)", revision: "unknown", goVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok && info.Main.Version != "" {
		b.version = info.Main.Version
	}
	if version != "" {
		b.version = version
	}
	if !ok {
		return b
	}
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && b.revision != "unknown" {
		b.revision += "-dirty"
	}
	return b
}

func (b build) String() string {
	return fmt.Sprintf("edgeseg %s (commit %s, %s)", b.version, b.revision, b.goVersion)
}

// register adds edgeseg_build_info to set: always 1, the build in its
// labels, so dashboards can tell which replicas run which build.
func (b build) register(set *metrics.Set) {
	set.NewGauge(fmt.Sprintf(`edgeseg_build_info{version=%s,revision=%s,go=%s}`, label(b.version), label(b.revision), label(b.goVersion)),
		func() float64 { return 1 })
}

// label quotes a Prometheus label value.
func label(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
