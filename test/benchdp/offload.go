package benchdp

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// WithoutTSO is a Setting that turns TCP segmentation offload off on device dev of every node
// (ethtool -K dev tso off) and, after the run, back to what each node had before, and checks that
// the device took each change. TCP's packets then still leave the stack as large GSO packets but
// are cut into segments in software before the NIC, so the NIC carries one frame per segment: what
// it carries of an overlay's VXLAN packets when it has no UDP-tunnel segmentation offload.
func WithoutTSO(dev string, nodes ...*Node) *Setting {
	prior := make(map[*Node]string, len(nodes)) // TSO's state before Apply, per node it changed
	return &Setting{
		Apply: func(ctx context.Context) error {
			for _, n := range nodes {
				state, err := tsoState(ctx, n, dev)
				if err != nil {
					return err
				}
				if state == "off" {
					continue
				}
				prior[n] = state
				if err := setTSO(ctx, n, dev, "off"); err != nil {
					return err
				}
			}
			return nil
		},
		Revert: func(ctx context.Context) error {
			var errs []error
			for _, n := range nodes {
				if state, ok := prior[n]; ok {
					errs = append(errs, setTSO(ctx, n, dev, state))
					delete(prior, n)
				}
			}
			return errors.Join(errs...)
		},
	}
}

// setTSO sets TSO on n's dev to state (on, off) and checks that the device took it.
func setTSO(ctx context.Context, n *Node, dev, state string) error {
	if _, err := n.Runner.Run(ctx, "", "ethtool", "-K", dev, "tso", state); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	got, err := tsoState(ctx, n, dev)
	if err != nil {
		return err
	}
	if got != state {
		return fmt.Errorf("%s: %s tcp-segmentation-offload is %q after setting it %s", n.Name, dev, got, state)
	}
	return nil
}

// tsoState is the state (on, off) of TCP segmentation offload on n's dev.
func tsoState(ctx context.Context, n *Node, dev string) (string, error) {
	out, err := n.Runner.Run(ctx, "", "ethtool", "-k", dev)
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.Name, err)
	}
	state := offloadState(string(out), "tcp-segmentation-offload")
	if state == "" {
		return "", fmt.Errorf("%s: ethtool -k %s lists no tcp-segmentation-offload", n.Name, dev)
	}
	return state, nil
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
