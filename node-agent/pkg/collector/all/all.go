// Package all lists every cgroup collector of the node agent.
package all

import (
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/blkio"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/cpu"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/memory"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/network"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/pids"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/psi"
)

// New returns one instance of every collector.
func New() []collector.Collector {
	return []collector.Collector{cpu.New(), memory.New(), pids.New(), blkio.New(), network.New(), psi.New()}
}
