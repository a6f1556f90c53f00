// Package nodecheck checks the node at start: a container runtime root on XFS formatted without
// ftype=1 (no d_type) breaks overlayfs, so it gets a Warning Event on the Node and a metric.
package nodecheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"golang.org/x/sys/unix"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
)

// Name of the check.
const Name = "runtime-root-ftype"

// ReasonXFSNoFtype is the Event reason.
const ReasonXFSNoFtype = "XFSWithoutFtype"

// XFSMagic is XFS_SUPER_MAGIC ("XFSB").
const XFSMagic = 0x58465342

// Facts are what the check measures on the runtime root.
type Facts struct {
	// FSType is the statfs magic of the runtime root's filesystem.
	FSType int64
	// DType reports whether readdir returns file types (XFS: ftype=1).
	DType bool
}

// Broken reports the condition overlayfs cannot work with.
func (f Facts) Broken() bool { return f.FSType == XFSMagic && !f.DType }

// Probe measures the runtime root: its filesystem type and whether a directory listing in it carries
// d_type (a probe file is created and removed).
func Probe(root string) (Facts, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return Facts{}, fmt.Errorf("statfs runtime root %s: %w", root, err)
	}
	dir, err := os.MkdirTemp(root, ".ecloud-dtype-probe-")
	if err != nil {
		return Facts{}, fmt.Errorf("create d_type probe in %s: %w", root, err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		return Facts{}, fmt.Errorf("create d_type probe file in %s: %w", dir, err)
	}
	dtype, err := direntHasType(dir)
	if err != nil {
		return Facts{}, err
	}
	return Facts{FSType: int64(st.Type), DType: dtype}, nil
}

// direntHasType reads raw dirents (os.ReadDir would hide DT_UNKNOWN behind an lstat) and reports
// whether the probe file's type is known.
func direntHasType(dir string) (bool, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.ReadDirent(fd, buf)
	if err != nil {
		return false, fmt.Errorf("read dirents of %s: %w", dir, err)
	}
	for off := 0; off < n; {
		d := (*unix.Dirent)(unsafe.Pointer(&buf[off]))
		if d.Reclen == 0 {
			break
		}
		name := unix.ByteSliceToString((*[256]byte)(unsafe.Pointer(&d.Name[0]))[:])
		if name == "f" {
			return d.Type != unix.DT_UNKNOWN, nil
		}
		off += int(d.Reclen)
	}
	return false, errors.New("d_type probe file not listed in " + dir)
}

// Run probes root and reports the result: metric always, Warning Event on the node when broken.
func Run(ctx context.Context, root, nodeName string, recorder record.EventRecorder) {
	logger := klog.FromContext(ctx)
	facts, err := Probe(root)
	if err != nil {
		logger.Info("Runtime root check skipped", "root", root, "err", err.Error())
		return
	}
	Report(ctx, facts, root, nodeName, recorder)
}

// Report records the facts: metric, log and (when broken) a Warning Event on the Node.
func Report(ctx context.Context, facts Facts, root, nodeName string, recorder record.EventRecorder) {
	if !facts.Broken() {
		agentmetrics.NodeCheckXFSNoFtype.Set(0)
		return
	}
	agentmetrics.NodeCheckXFSNoFtype.Set(1)
	msg := fmt.Sprintf("container runtime root %s is on XFS formatted without ftype=1 (no d_type): overlayfs snapshots misbehave; reformat with mkfs.xfs -n ftype=1", root)
	klog.FromContext(ctx).Error(nil, "Node check failed", "check", Name, "message", msg)
	if recorder != nil {
		// Node events are addressed by name (the kubelet uses the name as UID too).
		ref := &v1.ObjectReference{Kind: "Node", Name: nodeName, UID: types.UID(nodeName)}
		recorder.Event(ref, v1.EventTypeWarning, ReasonXFSNoFtype, msg)
	}
}
