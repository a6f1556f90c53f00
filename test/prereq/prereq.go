// Package prereq decides what a test does when something it needs is not on the machine.
//
// CI (a fresh clone, as root, make test) installs every prerequisite itself (hack/install-deps.sh),
// so there a missing one is a broken setup, and a test that skipped would hide it: with CI=true
// (any value strconv.ParseBool reads as true) Missing fails the test, naming what is missing.
// Elsewhere (a developer's machine without OVS, or not root) it skips with the same reason.
//
// A test that does not apply to the host (a cgroup v2 test on a cgroup v1 host) is not missing
// anything: NotApplicable skips it everywhere, CI included, with the reason.
package prereq

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Missing ends tb because a prerequisite is missing: a failure under CI=true, a skip elsewhere.
// why names what is missing, e.g. "needs Open vSwitch: ovs-vsctl not on PATH".
func Missing(tb testing.TB, why string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("missing prerequisite (CI=true, so this fails instead of skipping): %s", why)
	}
	tb.Skipf("%s (CI=true makes this a failure)", why)
}

// Root ends tb through Missing unless the test runs as root; what says what the test does as root.
func Root(tb testing.TB, what string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Missing(tb, "needs root: "+what)
	}
}

// NotApplicable skips tb everywhere: the test does not apply to this host (why says why).
func NotApplicable(tb testing.TB, why string) {
	tb.Helper()
	tb.Skip("not applicable here: " + why)
}
