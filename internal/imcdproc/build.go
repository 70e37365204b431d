package imcdproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// GoTool returns the go command: the one on PATH (scripts/test.sh puts its
// toolchain there), else, for a bare `go test` from a toolchain that is
// not, the one that built the running test binary.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	//lint:ignore SA1019 no other way to find the toolchain that built us
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Build builds the imcd command in the package directory pkgDir (relative
// to the working directory, as the go command takes it) into bin, with
// flags added to `go build`; the build's output goes to standard error.
func Build(bin, pkgDir string, flags ...string) error {
	args := append([]string{"build", "-o", bin}, flags...)
	c := exec.Command(GoTool(), append(args, pkgDir)...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	return c.Run()
}
