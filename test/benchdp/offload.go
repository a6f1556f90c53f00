package benchdp

import (
	"context"
	"fmt"
	"strings"
)

// WithoutTSO is a Setting that turns TCP segmentation offload off on device dev of every node
// (ethtool -K dev tso off) and back on after the run, and checks that the device took each
// change. TCP's packets then still leave the stack as large GSO packets but are cut into
// segments in software before the NIC, so the NIC carries one frame per segment: what it
// carries of an overlay's VXLAN packets when it has no UDP-tunnel segmentation offload.
func WithoutTSO(dev string, nodes ...*Node) *Setting {
	set := func(ctx context.Context, state string) error {
		for _, n := range nodes {
			if _, err := n.Runner.Run(ctx, "", "ethtool", "-K", dev, "tso", state); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			out, err := n.Runner.Run(ctx, "", "ethtool", "-k", dev)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			if got := offloadState(string(out), "tcp-segmentation-offload"); got != state {
				return fmt.Errorf("%s: %s tcp-segmentation-offload is %q after setting it %s", n.Name, dev, got, state)
			}
		}
		return nil
	}
	return &Setting{
		Apply:  func(ctx context.Context) error { return set(ctx, "off") },
		Revert: func(ctx context.Context) error { return set(ctx, "on") },
	}
}

// offloadState is the state (on, off) of feature in `ethtool -k` output, "" if it is not listed.
func offloadState(out, feature string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), feature+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}
