# lib.sh: what hack/guest-datapath/run.sh and hack/bench-datapath/guests.sh share: Debian's kernel
# (the package behind linux-image-amd64, extracted, not installed) with its modules.dep and a
# busybox initramfs, and booting a QEMU guest whose root is the host's /usr and /etc over 9p
# (stage1-init, stage2-init; the payload folder's guest.sh is what the guest runs).
# Source it with GDP_BASE (state folder) set; it defines gdp_log, gdp_kernel, gdp_boot, gdp_wait.
GDP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gdp_log() { printf '[%s] %s\n' "$(date -u +%T)" "$*"; }

# gdp_kernel: sets KVER, KDIR (the extracted package, with modules.dep) and INITRD.
gdp_kernel() {
  mkdir -p "$GDP_BASE/debs"
  local kpkg; kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  KVER=${kpkg#linux-image-}
  KDIR=$GDP_BASE/kernel-$KVER
  if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ]; then
    gdp_log "downloading $kpkg"
    (cd "$GDP_BASE/debs" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >/dev/null)
    rm -rf "$KDIR.tmp"; dpkg-deb -x "$GDP_BASE"/debs/"${kpkg}"_*.deb "$KDIR.tmp"; mv "$KDIR.tmp" "$KDIR"
    depmod -b "$KDIR" "$KVER"   # the .deb ships no modules.dep
  fi
  INITRD=$GDP_BASE/initrd-$KVER.img
  if [ ! -f "$INITRD" ]; then
    local ir=$GDP_BASE/initramfs.d; rm -rf "$ir"; mkdir -p "$ir"/{bin,dev,proc,sys,newroot,modules}
    cp /bin/busybox "$ir/bin/busybox"; cp "$GDP_DIR/stage1-init" "$ir/init"
    # one modprobe call per module: extra names would be taken as module parameters
    for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe -d "$KDIR" -S "$KVER" --show-depends $m; done |
      awk '$1=="insmod"{print $2}' | awk '!seen[$0]++' | while read -r ko; do cp "$ko" "$ir/modules/"; basename "$ko"; done >"$ir/modules.order"
    (cd "$ir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$INITRD")
  fi
}

# gdp_boot NAME NETNS TAP MAC NODEDIR PAYLOAD PIDFILE: boots a guest (2 vCPUs, 1 GiB; TCG unless
# GDP_ACCEL=kvm) in the background, its NIC on tap TAP (created in NETNS beforehand), NODEDIR
# shared read-write (node.env in, results out), PAYLOAD read-only (stage2-init, guest.sh, …).
gdp_boot() {
  local name=$1 ns=$2 tap=$3 mac=$4 nodedir=$5 payload=$6 pidfile=$7
  local accel="-machine q35 -accel tcg,thread=multi,tb-size=128 -cpu max"
  [ "${GDP_ACCEL:-tcg}" = kvm ] && accel="-machine q35,accel=kvm -cpu host"
  local p9="security_model=none,multidevs=remap"
  cp "$GDP_DIR/stage2-init" "$payload/"
  rm -f "$nodedir/console.log"
  gdp_log "booting $name ($KVER, ${GDP_ACCEL:-tcg})"
  # shellcheck disable=SC2086
  ip netns exec "$ns" qemu-system-x86_64 -name "$name" $accel -smp 2 -m 1024 \
    -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$INITRD" \
    -append "console=ttyS0 quiet loglevel=3 cgroup_no_v1=all panic=-1" \
    -chardev file,id=con0,path="$nodedir/console.log" -serial chardev:con0 \
    -fsdev local,id=fs_usr,path=/usr,readonly=on,$p9 -device virtio-9p-pci,fsdev=fs_usr,mount_tag=hostusr \
    -fsdev local,id=fs_etc,path=/etc,readonly=on,$p9 -device virtio-9p-pci,fsdev=fs_etc,mount_tag=hostetc \
    -fsdev local,id=fs_mod,path="$KDIR/lib/modules",readonly=on,$p9 -device virtio-9p-pci,fsdev=fs_mod,mount_tag=modules \
    -fsdev local,id=fs_pay,path="$payload",readonly=on,$p9 -device virtio-9p-pci,fsdev=fs_pay,mount_tag=payload \
    -fsdev local,id=fs_node,path="$nodedir",$p9 -device virtio-9p-pci,fsdev=fs_node,mount_tag=node \
    -netdev tap,id=n0,ifname="$tap",script=no,downscript=no -device virtio-net-pci,netdev=n0,mac="$mac" \
    -pidfile "$pidfile" -daemonize
}

# gdp_wait NODEDIR SECONDS: until the guest's console says GUEST-READY.
gdp_wait() {
  local t0=$SECONDS
  until grep -qa GUEST-READY "$1/console.log" 2>/dev/null; do
    [ $((SECONDS - t0)) -lt "$2" ] || { echo "guest: no GUEST-READY after $2s"; tail -20 "$1/console.log"; return 1; }
    sleep 1
  done
  gdp_log "guest $(basename "$1") up after $((SECONDS - t0))s"
}
