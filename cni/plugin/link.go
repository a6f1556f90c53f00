package plugin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// podNet is what the pod side of an attachment looks like.
type podNet struct {
	IfName   string
	HostVeth string
	MAC      net.HardwareAddr
	IP       netip.Prefix
	Gateway  netip.Addr
	MTU      int
}

// createVeth creates the veth pair with mtu (0: the kernel's default): the host end in the
// current netns and ifName in the pod's netns, with its transmit checksum offload off when
// txOff (the OVS userspace datapath forwards packets whose checksum the veth left to "hardware"
// without completing it, so TCP would fail); both ends up, the host end last. It needs nothing from the
// lease, so it runs while netd allocates the IP; configurePod finishes the pod end. Every
// change to the host end makes ovs-vswitchd reconfigure all its ports, so they all happen here,
// together, and configurePod leaves the host end alone when the MTU was known. On error
// everything it made is removed.
func createVeth(netnsPath, hostVeth, ifName string, mtu int, txOff bool) (hostMAC net.HardwareAddr, err error) {
	nsh, h, err := openNetns(netnsPath)
	if err != nil {
		return nil, err
	}
	defer nsh.Close()
	defer h.Close()
	if err := deleteLink(hostVeth); err != nil { // a half-done earlier ADD
		return nil, err
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostVeth, MTU: mtu},
		PeerName:      ifName,
		PeerNamespace: netlink.NsFd(int(nsh)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth %s with peer %s in %s: %w", hostVeth, ifName, netnsPath, err)
	}
	defer func() {
		if err != nil {
			_ = deleteLink(hostVeth)
		}
	}()
	if txOff {
		if err := inNetNS(nsh, func() error { return txChecksumOff(ifName) }); err != nil {
			return nil, fmt.Errorf("configure %s in %s: %w", ifName, netnsPath, err)
		}
	}
	pod, err := h.LinkByName(ifName)
	if err != nil {
		return nil, fmt.Errorf("find %s in %s: %w", ifName, netnsPath, err)
	}
	if err := h.LinkSetUp(pod); err != nil {
		return nil, fmt.Errorf("set %s up: %w", ifName, err)
	}
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	host, err := netlink.LinkByName(hostVeth)
	if err != nil {
		return nil, fmt.Errorf("find host veth %s: %w", hostVeth, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return nil, fmt.Errorf("set host veth %s up: %w", hostVeth, err)
	}
	return host.Attrs().HardwareAddr, nil
}

// configurePod gives the pod end (up already) its MAC, address and default route, and the pair
// the lease's MTU when createVeth did not know it (createdMTU).
func configurePod(netnsPath string, n podNet, createdMTU int) error {
	setMTU := n.MTU > 0 && n.MTU != createdMTU
	if setMTU {
		host, err := netlink.LinkByName(n.HostVeth)
		if err != nil {
			return fmt.Errorf("find host veth %s: %w", n.HostVeth, err)
		}
		if err := netlink.LinkSetMTU(host, n.MTU); err != nil {
			return fmt.Errorf("set MTU %d on %s: %w", n.MTU, n.HostVeth, err)
		}
	}
	nsh, h, err := openNetns(netnsPath)
	if err != nil {
		return err
	}
	defer nsh.Close()
	defer h.Close()
	link, err := h.LinkByName(n.IfName)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", n.IfName, netnsPath, err)
	}
	if setMTU {
		if err := h.LinkSetMTU(link, n.MTU); err != nil {
			return fmt.Errorf("set MTU %d on %s: %w", n.MTU, n.IfName, err)
		}
	}
	if err := h.LinkSetHardwareAddr(link, n.MAC); err != nil { // veths change MAC while up
		return fmt.Errorf("set MAC %s on %s: %w", n.MAC, n.IfName, err)
	}
	addr := &netlink.Addr{IPNet: prefixToIPNet(n.IP)}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", n.IP, n.IfName, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: n.Gateway.AsSlice(), Dst: defaultRoute()}
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s on %s: %w", n.Gateway, n.IfName, err)
	}
	return nil
}

func defaultRoute() *net.IPNet { return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)} }

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// inNetNS runs fn on a locked OS thread switched into nsh. If switching back fails the thread
// stays locked, so the Go runtime retires it instead of reusing it in the wrong netns.
func inNetNS(nsh netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(nsh); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("return to the plugin's netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// ethtool ioctl constants (linux/ethtool.h, linux/sockios.h).
const (
	siocEthtool    = 0x8946
	ethtoolGTxCsum = 0x16
	ethtoolSTxCsum = 0x17
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data uintptr
	_    [16]byte
}

func ethtoolValueIoctl(ifName string, v *ethtoolValue) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifName)
	ifr.data = uintptr(unsafe.Pointer(v))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), siocEthtool, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return fmt.Errorf("ethtool ioctl %#x on %s: %w", v.cmd, ifName, errno)
	}
	return nil
}

// txChecksumOff is `ethtool -K ifName tx off`, in the current netns.
func txChecksumOff(ifName string) error {
	return ethtoolValueIoctl(ifName, &ethtoolValue{cmd: ethtoolSTxCsum, data: 0})
}

// txChecksumOn reports whether ifName (in the current netns) still offloads tx checksums.
func txChecksumOn(ifName string) (bool, error) {
	v := &ethtoolValue{cmd: ethtoolGTxCsum}
	if err := ethtoolValueIoctl(ifName, v); err != nil {
		return false, err
	}
	return v.data != 0, nil
}

// deleteLink removes a link in the current netns; one that is gone is not an error.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// deletePodLink removes ifName from the pod's netns when the netns still exists (the veth's
// host end usually took it with it already).
func deletePodLink(netnsPath, ifName string) error {
	if netnsPath == "" {
		return nil
	}
	nsh, h, err := openNetns(netnsPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer nsh.Close()
	defer h.Close()
	l, err := h.LinkByName(ifName)
	if err != nil {
		return nil // gone
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s in %s: %w", ifName, netnsPath, err)
	}
	return nil
}

// checkPodSide verifies the pod end: interface, address, default route, and tx offload off
// when txOff.
func checkPodSide(netnsPath string, n podNet, txOff bool) error {
	nsh, h, err := openNetns(netnsPath)
	if err != nil {
		return err
	}
	defer nsh.Close()
	defer h.Close()
	link, err := h.LinkByName(n.IfName)
	if err != nil {
		return fmt.Errorf("interface %s missing in %s: %w", n.IfName, netnsPath, err)
	}
	if n.MAC != nil && link.Attrs().HardwareAddr.String() != n.MAC.String() {
		return fmt.Errorf("interface %s has MAC %s, want %s", n.IfName, link.Attrs().HardwareAddr, n.MAC)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", n.IfName, err)
	}
	found := false
	for _, a := range addrs {
		if a.IPNet.String() == prefixToIPNet(n.IP).String() {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("interface %s lacks address %s", n.IfName, n.IP)
	}
	routes, err := h.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("routes of %s: %w", n.IfName, err)
	}
	found = false
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(n.Gateway.AsSlice()) {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no default route via %s on %s", n.Gateway, n.IfName)
	}
	if !txOff {
		return nil
	}
	return inNetNS(nsh, func() error {
		on, err := txChecksumOn(n.IfName)
		if err != nil {
			return err
		}
		if on {
			return fmt.Errorf("tx checksum offload is on for %s: TCP through the userspace datapath fails", n.IfName)
		}
		return nil
	})
}

// hostVethExists reports whether the host end is present.
func hostVethExists(name string) error {
	if _, err := netlink.LinkByName(name); err != nil {
		return fmt.Errorf("host veth %s missing: %w", name, err)
	}
	return nil
}

// openNetns opens the netns at path and a netlink handle working inside it.
func openNetns(path string) (netns.NsHandle, *netlink.Handle, error) {
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		return 0, nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		nsh.Close()
		return 0, nil, fmt.Errorf("netlink handle in %s: %w", path, err)
	}
	return nsh, h, nil
}
