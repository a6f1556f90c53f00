#!/usr/bin/env bash
# prepare.sh OUTDIR: the guest node's kernel and initramfs (hack/cluster/guest.sh boots them).
#   OUTDIR/kernel/boot/vmlinuz-KVER, OUTDIR/kernel/lib/modules/KVER   Debian's kernel package,
#       extracted (not installed) with its modules; depmod run on it (the .deb ships no modules.dep)
#   OUTDIR/initrd.img   static busybox + the modules that mount the root (virtio, 9p, overlay),
#       and stage1-init as /init
#   OUTDIR/kver         the kernel version
# The package is the one Debian's linux-image-amd64 points at (GUEST_KERNEL_PACKAGE overrides).
# Idempotent: a kernel already extracted is kept; the initramfs is rebuilt when stage1-init changed.
set -euo pipefail
OUT=${1:?usage: prepare.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/debs"
pkg=${GUEST_KERNEL_PACKAGE:-$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')}
[ -n "$pkg" ] || { echo "prepare: no Debian kernel package behind linux-image-amd64 (apt-get update?)" >&2; exit 1; }
kver=${pkg#linux-image-}
if [ ! -f "$OUT/kernel/boot/vmlinuz-$kver" ] || [ ! -f "$OUT/kernel/lib/modules/$kver/modules.dep" ]; then
  rm -f "$OUT"/debs/*.deb
  (cd "$OUT/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
  rm -rf "$OUT/kernel.tmp" "$OUT/kernel"
  dpkg-deb -x "$OUT"/debs/"${pkg}"_*.deb "$OUT/kernel.tmp"
  depmod -b "$OUT/kernel.tmp" "$kver"
  mv "$OUT/kernel.tmp" "$OUT/kernel"
  rm -f "$OUT"/debs/*.deb
fi
echo "$kver" >"$OUT/kver"
stamp="$kver $(sha256sum "$HERE/stage1-init" | cut -c1-16)"
if [ -f "$OUT/initrd.img" ] && [ "$(cat "$OUT/initrd.stamp" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
IR=$OUT/initramfs.d
rm -rf "$IR"; mkdir -p "$IR"/{bin,dev,proc,sys,newroot,modules}
cp /bin/busybox "$IR/bin/busybox"
cp "$HERE/stage1-init" "$IR/init"; chmod 755 "$IR/init"
# modprobe --show-depends takes one module per call (further names would be parameters).
for m in virtio_pci virtio_net 9pnet_virtio 9p overlay; do
  modprobe -d "$OUT/kernel" -S "$kver" --show-depends "$m"
done | awk '$1=="insmod"{print $2}' | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$IR/modules/"; basename "$ko" >>"$IR/modules.order"
done
(cd "$IR" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$OUT/initrd.img.tmp")
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
rm -rf "$IR"
echo "$stamp" >"$OUT/initrd.stamp"
