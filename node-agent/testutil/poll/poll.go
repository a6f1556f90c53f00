// Package poll waits for conditions in tests without fixed sleeps.
package poll

import (
	"testing"
	"time"
)

// Until polls cond every few milliseconds and fails the test after timeout.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
