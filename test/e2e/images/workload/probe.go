package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Probe frames: the e2e anti-spoofing check sends them (/send, /arp) from an attacker pod with
// CAP_NET_ADMIN and CAP_NET_RAW and counts them (/seen) where they would arrive. The payload is
// probeMagic followed by a tag that names the attempt, carried in IPv4/UDP, IPv6/UDP or a bare
// frame of ethertype etherProbe.
const (
	probeMagic = "ecloud-probe "
	etherIPv4  = 0x0800
	etherARP   = 0x0806
	etherIPv6  = 0x86dd
	etherProbe = 0x88b5 // IEEE 802 local experimental ethertype
	probeIf    = "eth0"
)

// seenTag is what arrived with one tag.
type seenTag struct {
	Count int      `json:"count"`
	Src   []string `json:"src"` // IP sources (IPv4/IPv6 probes)
	MAC   []string `json:"mac"` // Ethernet sources
}

// seenARP is one kind of ARP frame that arrived.
type seenARP struct {
	Op    int    `json:"op"`
	SPA   string `json:"spa"`
	SHA   string `json:"sha"`
	Count int    `json:"count"`
}

// sniffer counts the probe and ARP frames that arrive on eth0.
type sniffer struct {
	mu   sync.Mutex
	tags map[string]*seenTag
	arp  map[[3]string]int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sniff listens on eth0 for incoming frames until the process ends.
func (s *sniffer) sniff() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	ifi, err := net.InterfaceByName(probeIf)
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fmt.Errorf("bind packet socket to %s: %w", probeIf, err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				log.Printf("sniff %s: %v", probeIf, err)
				return
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			s.record(buf[:n])
		}
	}()
	return nil
}

func (s *sniffer) record(f []byte) {
	if len(f) < 14 {
		return
	}
	src := net.HardwareAddr(f[6:12]).String()
	etype, body := binary.BigEndian.Uint16(f[12:14]), f[14:]
	var ip, payload string
	switch etype {
	case etherARP:
		if len(body) < 28 {
			return
		}
		spa, _ := netip.AddrFromSlice(body[14:18])
		key := [3]string{strconv.Itoa(int(binary.BigEndian.Uint16(body[6:8]))), spa.String(), net.HardwareAddr(body[8:14]).String()}
		s.mu.Lock()
		s.arp[key]++
		s.mu.Unlock()
		return
	case etherIPv4:
		if len(body) < 20 || body[9] != unix.IPPROTO_UDP {
			return
		}
		ihl := int(body[0]&0x0f) * 4
		if len(body) < ihl+8 {
			return
		}
		a, _ := netip.AddrFromSlice(body[12:16])
		ip, payload = a.String(), string(body[ihl+8:])
	case etherIPv6:
		if len(body) < 48 || body[6] != unix.IPPROTO_UDP {
			return
		}
		a, _ := netip.AddrFromSlice(body[8:24])
		ip, payload = a.String(), string(body[48:])
	case etherProbe:
		payload = string(body)
	default:
		return
	}
	tag, ok := strings.CutPrefix(payload, probeMagic)
	if !ok {
		return
	}
	tag, _, _ = strings.Cut(tag, " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tags[tag]
	if t == nil {
		t = &seenTag{}
		s.tags[tag] = t
	}
	t.Count++
	if ip != "" && !slices.Contains(t.Src, ip) {
		t.Src = append(t.Src, ip)
	}
	if !slices.Contains(t.MAC, src) {
		t.MAC = append(t.MAC, src)
	}
}

// serveSeen answers /seen: every probe tag and ARP frame that arrived, as JSON.
func (s *sniffer) serveSeen(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := struct {
		Tags map[string]*seenTag `json:"tags"`
		ARP  []seenARP           `json:"arp"`
	}{Tags: s.tags}
	for k, n := range s.arp {
		op, _ := strconv.Atoi(k[0])
		out.ARP = append(out.ARP, seenARP{Op: op, SPA: k[1], SHA: k[2], Count: n})
	}
	b, err := json.Marshal(out)
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// sendParams are the query parameters of /send and /arp.
type sendParams struct {
	via            string // "packet": frames built here; "socket": the kernel's UDP stack
	proto          string // packet: udp4, udp6 or ether
	src, dst       netip.Addr
	srcMAC, dstMAC net.HardwareAddr
	port, count    int
	tag            string
}

func parseSend(r *http.Request) (sendParams, error) {
	q := r.URL.Query()
	p := sendParams{via: q.Get("via"), proto: q.Get("proto"), tag: q.Get("tag"), port: 9999, count: 10}
	if p.via == "" {
		p.via = "packet"
	}
	if p.proto == "" {
		p.proto = "udp4"
	}
	var err error
	for name, dst := range map[string]*netip.Addr{"src": &p.src, "dst": &p.dst} {
		if v := q.Get(name); v != "" {
			if *dst, err = netip.ParseAddr(v); err != nil {
				return p, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	for name, dst := range map[string]*net.HardwareAddr{"srcmac": &p.srcMAC, "dstmac": &p.dstMAC} {
		if v := q.Get(name); v != "" {
			if *dst, err = net.ParseMAC(v); err != nil {
				return p, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	for name, dst := range map[string]*int{"port": &p.port, "count": &p.count} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.Atoi(v); err != nil || *dst <= 0 || *dst > 65535 {
				return p, fmt.Errorf("%s %q: want 1..65535", name, v)
			}
		}
	}
	if p.tag == "" || strings.ContainsAny(p.tag, " \n") {
		return p, fmt.Errorf("tag %q: want one word", p.tag)
	}
	return p, nil
}

// serveSend answers /send: count probes tagged tag to dst:port.
//
//	via=packet  frames written to eth0's packet socket (CAP_NET_RAW): any src (IP header), srcmac,
//	            dstmac (default 0a:58:<dst>), proto=udp4|udp6|ether
//	via=socket  a UDP socket bound to src; src is added to eth0 (/32, CAP_NET_ADMIN) for the call
//	            when the pod does not have it, and eth0 takes srcmac for the call
func serveSend(w http.ResponseWriter, r *http.Request) {
	p, err := parseSend(r)
	if err == nil {
		switch p.via {
		case "packet":
			err = sendFrames(p)
		case "socket":
			err = sendSocket(p)
		default:
			err = fmt.Errorf("via %q: want packet or socket", p.via)
		}
	}
	if err != nil {
		http.Error(w, "send: "+err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "sent %d\n", p.count)
}

func eth0() (*net.Interface, error) { return net.InterfaceByName(probeIf) }

func sendFrames(p sendParams) error {
	ifi, err := eth0()
	if err != nil {
		return err
	}
	if p.srcMAC == nil {
		p.srcMAC = ifi.HardwareAddr
	}
	if p.dstMAC == nil && p.dst.Is4() {
		b := p.dst.As4()
		p.dstMAC = net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
	}
	if p.dstMAC == nil {
		p.dstMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	var etype uint16
	var build func(payload []byte) []byte
	switch p.proto {
	case "udp4":
		if !p.src.Is4() || !p.dst.Is4() {
			return fmt.Errorf("udp4 needs IPv4 src and dst")
		}
		etype, build = etherIPv4, func(pl []byte) []byte { return ipv4UDP(p.src, p.dst, p.port, pl) }
	case "udp6":
		if !p.src.Is6() || !p.dst.Is6() {
			return fmt.Errorf("udp6 needs IPv6 src and dst")
		}
		etype, build = etherIPv6, func(pl []byte) []byte { return ipv6UDP(p.src, p.dst, p.port, pl) }
	case "ether":
		etype, build = etherProbe, func(pl []byte) []byte { return pl }
	default:
		return fmt.Errorf("proto %q: want udp4, udp6 or ether", p.proto)
	}
	frames := make([][]byte, p.count)
	for i := range frames {
		frames[i] = ethernet(p.dstMAC, p.srcMAC, etype, build([]byte(fmt.Sprintf("%s%s %d", probeMagic, p.tag, i))))
	}
	return writeFrames(ifi, p.dstMAC, frames)
}

func sendSocket(p sendParams) error {
	ifi, err := eth0()
	if err != nil {
		return err
	}
	link, err := netlink.LinkByName(probeIf)
	if err != nil {
		return err
	}
	if p.srcMAC != nil && p.srcMAC.String() != ifi.HardwareAddr.String() {
		if err := netlink.LinkSetHardwareAddr(link, p.srcMAC); err != nil {
			return fmt.Errorf("set MAC %s on %s: %w", p.srcMAC, probeIf, err)
		}
		defer func() {
			if err := netlink.LinkSetHardwareAddr(link, ifi.HardwareAddr); err != nil {
				log.Printf("restore MAC %s on %s: %v", ifi.HardwareAddr, probeIf, err)
			}
		}()
	}
	if p.src.IsValid() && !strings.Contains(","+podIPs()+",", ","+p.src.String()+",") {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.src.AsSlice(), Mask: net.CIDRMask(32, 32)}}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s to %s: %w", p.src, probeIf, err)
		}
		defer func() {
			if err := netlink.AddrDel(link, addr); err != nil {
				log.Printf("remove address %s from %s: %v", p.src, probeIf, err)
			}
		}()
	}
	laddr := &net.UDPAddr{}
	if p.src.IsValid() {
		laddr.IP = p.src.AsSlice()
	}
	c, err := net.DialUDP("udp4", laddr, &net.UDPAddr{IP: p.dst.AsSlice(), Port: p.port})
	if err != nil {
		return err
	}
	defer c.Close()
	for i := range p.count {
		// A refused earlier datagram (ICMP port unreachable) fails a later write: not our concern.
		_, _ = fmt.Fprintf(c, "%s%s %d", probeMagic, p.tag, i)
		time.Sleep(time.Millisecond)
	}
	return nil
}

// serveARP answers /arp: count ARP frames op (1 request, 2 reply) with the given sender and
// target, from srcmac (default eth0's) to dstmac (default broadcast).
func serveARP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	err := func() error {
		ifi, err := eth0()
		if err != nil {
			return err
		}
		op, err := strconv.Atoi(q.Get("op"))
		if err != nil || (op != 1 && op != 2) {
			return fmt.Errorf("op %q: want 1 or 2", q.Get("op"))
		}
		count, err := strconv.Atoi(q.Get("count"))
		if err != nil || count <= 0 || count > 1000 {
			return fmt.Errorf("count %q: want 1..1000", q.Get("count"))
		}
		macs := map[string]net.HardwareAddr{"srcmac": ifi.HardwareAddr, "dstmac": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "sha": ifi.HardwareAddr, "tha": make(net.HardwareAddr, 6)}
		for k := range macs {
			if v := q.Get(k); v != "" {
				if macs[k], err = net.ParseMAC(v); err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
			}
		}
		ips := map[string]netip.Addr{}
		for _, k := range []string{"spa", "tpa"} {
			if ips[k], err = netip.ParseAddr(q.Get(k)); err != nil || !ips[k].Is4() {
				return fmt.Errorf("%s %q: want an IPv4 address", k, q.Get(k))
			}
		}
		body := make([]byte, 28)
		binary.BigEndian.PutUint16(body[0:], 1) // Ethernet
		binary.BigEndian.PutUint16(body[2:], etherIPv4)
		body[4], body[5] = 6, 4
		binary.BigEndian.PutUint16(body[6:], uint16(op))
		spa, tpa := ips["spa"].As4(), ips["tpa"].As4()
		copy(body[8:], macs["sha"])
		copy(body[14:], spa[:])
		copy(body[18:], macs["tha"])
		copy(body[24:], tpa[:])
		frames := make([][]byte, count)
		for i := range frames {
			frames[i] = ethernet(macs["dstmac"], macs["srcmac"], etherARP, body)
		}
		return writeFrames(ifi, macs["dstmac"], frames)
	}()
	if err != nil {
		http.Error(w, "arp: "+err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "sent %s\n", q.Get("count"))
}

func writeFrames(ifi *net.Interface, dst net.HardwareAddr, frames [][]byte) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], dst)
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, to); err != nil {
			return fmt.Errorf("write frame on %s: %w", ifi.Name, err)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func ethernet(dst, src net.HardwareAddr, etype uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:], dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], etype)
	return append(f, payload...)
}

func udp(port int, payload []byte) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], 40000)
	binary.BigEndian.PutUint16(u[2:], uint16(port))
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	return append(u, payload...) // checksum 0: none (IPv4); the probes are counted, not delivered
}

func ipv4UDP(src, dst netip.Addr, port int, payload []byte) []byte {
	u := udp(port, payload)
	h := make([]byte, 20, 20+len(u))
	h[0], h[8], h[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(u)))
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	return append(h, u...)
}

func ipv6UDP(src, dst netip.Addr, port int, payload []byte) []byte {
	u := udp(port, payload)
	h := make([]byte, 40, 40+len(u))
	h[0], h[6], h[7] = 0x60, unix.IPPROTO_UDP, 64
	binary.BigEndian.PutUint16(h[4:], uint16(len(u)))
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, u...)
}
