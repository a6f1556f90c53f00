// Package locations follows the IPLocationSlices the ip-controller writes and keeps, in memory,
// where every bound overlay IP lives: IP → (node, the node's tunnel endpoint, VLAN). netd builds
// its remote flows from it; anything else that needs the cluster's IP locations without OVS (the
// scale benchmark's simulated nodes) uses the same code.
//
// A Follower runs one client-go Reflector over the slices with itself as the store: the decoded
// objects are turned into a compact table (netip.Addr keys, small values) and dropped, so a
// follower's memory grows with the number of located IPs, not with the size of the objects.
// Every change is reported to an optional callback with the slice's write time, so propagation
// (ip-controller write → follower) can be measured.
package locations
