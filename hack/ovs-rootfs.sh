#!/usr/bin/env bash
# ovs-rootfs.sh DIR: the root filesystem of the ecloud/ovs image, from Debian's own packages:
# `apt-get download` openvswitch-switch, openvswitch-common and kmod (modprobe for the kernel
# module), plus every package that ships a shared library
# their programs load (found with ldd and dpkg -S: exactly the ELF closure, without the Python,
# init-script and shell dependencies the packages declare for the tools ecloud does not run);
# each is unpacked with `dpkg-deb -x`. Merged /usr as on Debian 12. Docs, man pages and
# completions are left out. The .debs are cached in DIR.debs.
set -euo pipefail
OUTDIR=${1:?usage: $0 DIR}
DEBS=$OUTDIR.debs
PKGS=(openvswitch-switch openvswitch-common kmod)
# The programs the supervisor and netd's tools run inside the image.
PROGS=(usr/sbin/ovsdb-server usr/lib/openvswitch-switch/ovs-vswitchd usr/bin/ovs-vsctl usr/bin/ovs-appctl
  usr/bin/ovs-ofctl usr/bin/ovs-dpctl usr/bin/ovsdb-tool usr/bin/ovsdb-client bin/kmod)
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    { echo "ovs-rootfs: $p is not installed here (hack/install-deps.sh up installs it)" >&2; exit 1; }
done
mkdir -p "$DEBS"
rm -rf "$OUTDIR.tmp" "$OUTDIR.tmp.pkgs"; mkdir -p "$OUTDIR.tmp"
R=$OUTDIR.tmp

# download PKG...: fetch the packages that are not cached yet, in one apt-get run (its start-up
# costs seconds), at the versions the archive has now.
download() {
  local p missing=()
  for p in "$@"; do ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  # -o APT::Sandbox::User=root: the cache dir is root's (make up runs as root)
  (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >/dev/null) ||
    { echo "ovs-rootfs: apt-get download ${missing[*]} failed" >&2; return 1; }
}
download "${PKGS[@]}"
dpkg -L "${PKGS[@]}" >"$R.files"
# The library closure: each library ldd resolves for the programs, mapped to its package.
libpkgs=$(for b in "${PROGS[@]}"; do
    grep -qx "/$b" "$R.files" || { echo "ovs-rootfs: /$b is in none of ${PKGS[*]}" >&2; exit 1; }
    ldd "/$b"
  done | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u |
  while read -r lib; do
    # merged /usr: the library may be registered under /lib or /usr/lib
    real=$(readlink -f "$lib")
    for cand in "$lib" "$real" "${lib#/usr}" "${real#/usr}" "/usr$lib" "/usr$real"; do
      pkg=$(dpkg -S "$cand" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$pkg" ] && { echo "$pkg"; break; }
    done
  done | sort -u)
[ -n "$libpkgs" ] || { echo "ovs-rootfs: found no library packages" >&2; exit 1; }
# shellcheck disable=SC2086
download $libpkgs
for p in "${PKGS[@]}" $libpkgs; do
  deb=$(ls -t "$DEBS/${p}_"*.deb | head -1)
  dpkg-deb -x "$deb" "$R"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' | sed 's/^Package: //; s/ Version: / /' >>"$R.pkgs"
done
# Merged /usr: /bin, /sbin, /lib, /lib64 are links into /usr.
for d in bin sbin lib lib64; do
  if [ -d "$R/$d" ] && [ ! -L "$R/$d" ]; then
    mkdir -p "$R/usr/$d"; cp -a "$R/$d/." "$R/usr/$d/"; rm -rf "${R:?}/$d"
  fi
  mkdir -p "$R/usr/$d"; ln -sfn "usr/$d" "$R/$d"
done
# What Debian's postinst would do: the alternatives link of ovs-vswitchd.
ln -sfn ../lib/openvswitch-switch/ovs-vswitchd "$R/usr/sbin/ovs-vswitchd"
rm -rf "$R"/usr/share/{doc,man,lintian,bash-completion,bug} "$R"/etc/init.d "$R"/lib/systemd "$R"/usr/lib/systemd \
  "$R"/etc/network "$R"/etc/logrotate.d "$R"/usr/share/openvswitch/scripts "$R"/usr/share/openvswitch/bugtool-plugins
mkdir -p "$R/var/lib/ecloud/ovs" "$R/run/openvswitch" "$R/etc/openvswitch"
ln -sfn ../run "$R/var/run"   # the tools' compiled-in /var/run/openvswitch
# Which packages went in, for the image's users.
mv "$R.pkgs" "$R/usr/share/openvswitch/ecloud-packages.txt"
rm -rf "$OUTDIR" "$R.files"; mv "$R" "$OUTDIR"
echo "ovs-rootfs: $(wc -l <"$OUTDIR/usr/share/openvswitch/ecloud-packages.txt") Debian packages -> $OUTDIR ($(du -sh "$OUTDIR" | cut -f1))"
