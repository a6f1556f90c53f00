#!/usr/bin/env bash
# Installs the Debian packages a purpose needs, only those missing, only as root.
#   hack/install-deps.sh test     what `make test` needs
#   hack/install-deps.sh up       what `make up` (the local cluster on real kubelets) needs
#   hack/install-deps.sh bench-datapath   what `make bench-datapath` needs
# Not root: prints what is missing and exits 0, so the root-only tests skip with their own message.
set -euo pipefail
purpose=${1:?usage: hack/install-deps.sh test|up|bench-datapath}
case "$purpose" in
  # openvswitch-switch, iproute2, iputils-ping, ethtool: the CNI datapath tests (root only);
  # iptables: the gateway/kube-proxy path; prometheus: promtool for the alerting rules' tests.
  test) pkgs=(iproute2 iputils-ping ethtool iptables openvswitch-switch prometheus) ;;

  # runc: the OCI runtime under containerd 2 (which hack/build-k8s.sh builds from its Go module);
  # util-linux: nsenter/unshare for the hosts' namespaces; openssl: the cluster's throwaway PKI;
  # prometheus: the cluster's Prometheus (scraping every component, the alerting rules) and curl
  # to wait for it; qemu-system-x86, busybox-static, kmod, socat: the guest node (a QEMU guest on
  # Debian's kernel, hack/cluster/guest.sh); the rest as for test.
  up) pkgs=(runc iptables iproute2 ethtool openvswitch-switch util-linux openssl prometheus curl qemu-system-x86 busybox-static kmod socat) ;;
  # iperf3: TCP throughput of `make bench-datapath`; the rest as for test and (the guests) up.
  bench-datapath) pkgs=(iproute2 iputils-ping ethtool openvswitch-switch iperf3 qemu-system-x86 busybox-static kmod) ;;
  *) echo "install-deps: unknown purpose $purpose" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; missing ${missing[*]} (root-only tests will skip)" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# The packages' services are not started (policy-rc.d may forbid it): tests run their own daemons.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
