#!/bin/sh
# host-init.sh WORKDIR/hosts/KEY PATH...: the anchor of a simulated host. up.sh runs it inside the host's
# network namespace and a new, private mount namespace (nsenter --net + unshare --mount). It makes
# that mount namespace look like a host of its own, then sleeps; every daemon of the host is
# started inside these namespaces (nsenter --target <this pid>). When the last process of the host
# exits, the mount namespace and every mount below are gone with it.
set -eu
D=$1; shift
# /sys of this network namespace (what `ip netns exec` does), keeping the cgroup and resctrl mounts.
mkdir -p "$D/mnt/cgroup" "$D/mnt/resctrl"
mount --rbind /sys/fs/cgroup "$D/mnt/cgroup"
resctrl=0
if mountpoint -q /sys/fs/resctrl; then mount --rbind /sys/fs/resctrl "$D/mnt/resctrl"; resctrl=1; fi
mount -t sysfs sysfs /sys
mount --move "$D/mnt/cgroup" /sys/fs/cgroup
[ $resctrl = 1 ] && mount --move "$D/mnt/resctrl" /sys/fs/resctrl
# A private /run: containerd's sockets and shim dirs, /run/netns of the pods, /run/openvswitch,
# /run/xtables.lock are per host.
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns /run/openvswitch /run/containerd /run/lock
# The paths kubelet, containerd and DaemonSet hostPath volumes use (the PATH arguments), per host.
for p in "$@"; do
  mkdir -p "$D/root$p"
  mount --bind "$D/root$p" "$p"
done
# Like a real host (systemd does this): every mount shared, so that volumes with mountPropagation
# HostToContainer/Bidirectional work (netd's /run/netns, node-agent's /sys/fs). These peer groups
# are new and local to this namespace: nothing propagates back into the root namespace.
mount --make-rshared /
echo ready >"$D/ready"
exec sleep infinity
