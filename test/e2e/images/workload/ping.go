package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// ping sends one ICMP echo request to ip over an unprivileged ICMP socket and waits for the reply.
func ping(ip netip.Addr, timeout time.Duration) (time.Duration, error) {
	c, err := icmp.ListenPacket("udp4", "0.0.0.0")
	if err != nil {
		return 0, fmt.Errorf("icmp socket: %w", err)
	}
	defer c.Close()
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: 1, Data: []byte("ecloud")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := c.WriteTo(b, &net.UDPAddr{IP: ip.AsSlice()}); err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	_ = c.SetReadDeadline(start.Add(timeout))
	buf := make([]byte, 1500)
	for {
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			return 0, fmt.Errorf("no reply: %w", err)
		}
		reply, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			continue
		}
		// The kernel rewrites the echo ID of unprivileged sockets: match the peer and type.
		if reply.Type == ipv4.ICMPTypeEchoReply && peer.(*net.UDPAddr).IP.Equal(ip.AsSlice()) {
			return time.Since(start), nil
		}
	}
}
