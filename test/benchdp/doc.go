// Package benchdp measures datapaths for make bench-datapath: TCP throughput (iperf3) and
// 1-byte TCP request/response round trips (its own client and server, the benchdp command's
// rr-client and rr-server) between endpoints (a node, a network namespace, an IP), on several
// paths, in rotated and mirrored order over several iterations (Measure), with RESULT lines and
// ratios (Report, ReportRatios). Commands run through a Runner: on this machine (Local) or on a
// QEMU guest through the benchdp agent there (Remote). LinuxVXLAN builds the reference path
// (a Linux bridge and a vxlan device, as flannel's VXLAN backend).
package benchdp
