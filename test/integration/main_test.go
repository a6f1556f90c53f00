// Package integration holds the integration tests of every ecloud component, run against a real
// kube-apiserver (and, where needed, the real kube-scheduler and in-tree controllers) started
// in-process by test/harness. One package, so the apiserver is linked once.
package integration

import (
	"testing"

	"github.com/ecloud-io/ecloud/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
