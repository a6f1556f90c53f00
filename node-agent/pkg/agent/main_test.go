package agent_test

import (
	"os"
	"testing"

	"github.com/ecloud-io/ecloud/node-agent/testutil/cgtest"
)

func TestMain(m *testing.M) {
	cgtest.MaybeRunWorker()
	os.Exit(m.Run())
}
