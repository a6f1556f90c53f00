package netd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ecloud-io/ecloud/cni/fileutil"
	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/cni/plugin"
)

// ConfListName is the file netd writes into the CNI conf dir.
const ConfListName = "10-ecloud.conflist"

// ConfList is the reference network configuration list for the plugin; datapath tells the
// plugin whether pod interfaces need their checksum offload off (netdev).
func ConfList(version, network, socket string, mtu int, datapath ovs.DatapathType) ([]byte, error) {
	cl := map[string]any{
		"cniVersion": version,
		"name":       network,
		"plugins": []map[string]any{{
			"type":     plugin.Name,
			"socket":   socket,
			"mtu":      mtu,
			"datapath": string(datapath),
		}},
	}
	return json.MarshalIndent(cl, "", "  ")
}

// install copies the plugin binary into the CNI bin dir and writes the conflist, both
// atomically (write to a temp file, then rename), so the runtime never sees half a file.
func (d *Daemon) install() error {
	if d.cfg.CNIBinDir != "" {
		src, err := os.Open(d.cfg.PluginBinary)
		if err != nil {
			return fmt.Errorf("install plugin: open %s: %w", d.cfg.PluginBinary, err)
		}
		defer src.Close()
		if err := fileutil.WriteAtomic(filepath.Join(d.cfg.CNIBinDir, plugin.Name), 0o755, src); err != nil {
			return fmt.Errorf("install plugin into %s: %w", d.cfg.CNIBinDir, err)
		}
	}
	if d.cfg.CNIConfDir != "" {
		data, err := ConfList(d.cfg.CNIVersion, d.cfg.NetworkName, d.cfg.Socket, d.cfg.MTU, d.cfg.Datapath)
		if err != nil {
			return err
		}
		if err := fileutil.WriteAtomic(filepath.Join(d.cfg.CNIConfDir, ConfListName), 0o644, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("write conflist into %s: %w", d.cfg.CNIConfDir, err)
		}
	}
	return nil
}
