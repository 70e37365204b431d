// Command imcd is the IMC conference daemon for OpenSIPS.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "imcd: the daemon is not wired yet; see docs/ARCHITECTURE.md")
	os.Exit(0)
}
