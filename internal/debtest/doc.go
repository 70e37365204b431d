// Package debtest tests the Debian package that `make deb` builds
// (scripts/deb/): it builds the .deb, checks it with lintian, installs it
// with dpkg, runs the installed imcd as the imcd user with the installed
// configuration until /healthz answers, removes it while imcd runs (the
// maintainer scripts must stop it, with or without systemd), purges it,
// and checks that nothing the package made is left.
//
// It changes the machine (a package, a system user), so it runs only as
// root on a machine where neither the package nor the user exists, and
// skips otherwise; under IMCD_TEST_REQUIRE_DB it fails instead, as CI
// (root, Debian, scripts/test-services.sh) can always run it. It has no
// code of its own.
package debtest
