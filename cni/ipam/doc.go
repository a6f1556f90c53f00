// Package ipam is ecloud's IP address management: the one allocation package used by the
// scheduler's IPPool plugin (reserve while scheduling), the per-node CNI daemon (bind on ADD) and
// the IP controller (release policies, GC, pool status).
//
// Model: an IPPool is a range of addresses; an IPClaim holds one IP and is named after it, so the
// apiserver itself guarantees an IP is held at most once. Allocating is ONE create call: the
// Allocator keeps, from informers, which IPs of each pool are held or in flight, picks a free one
// and creates its claim; if another allocator won the race (AlreadyExists) it takes another IP.
// There is no global lock and no read-modify-write of a pool.
//
// Pure functions (no API calls):
//
//	ParseIntent(pod) (Intent, error)          mode, release policy, pools, IP, owner of a pod
//	ParsePoolList(annotation, value)          the ecloud.io/ip-pools list
//	OwnerOf(pod) v1alpha1.ClaimOwner          StatefulSet (+ordinal), Deployment, ..., Pod
//	ParseRanges(spec) (*Ranges, error)        allocatable addresses of a pool (net/netip)
//	NamespaceAllowed(pool, ns, labels)        access control (spec.namespaces, namespaceSelector)
//	PoolReachesNode(pool, node)               spec.nodeSelector against the node's labels
//	PoolsForNode(pools, node)                 the pools reaching a node, or ReasonNodeNotReached
//	Overlapping(pools) map[string]string      pools overlapping an older pool (never allocated from)
//	Decide(claim, Observation) Verdict        the release policy applied to what is observed
//	Duplicate(claim, siblings) bool           an unbound copy of another claim of one identity
//	ClaimIndexers(), ClaimsByIndex(...)       claim informer indexes by owner, pool, workload
//	ReleaseClaim(ctx, claims, claim, reason)  Release without an Allocator (the IP controller)
//
// The Allocator (New(Config), built from a pool informer, a claim informer and optionally a
// namespace lister and an event recorder; start the informers after New and wait for HasSynced):
//
//	Candidates(namespace, intent)             pools a pod may use: pod annotation, else namespace
//	                                          annotation, else default pools; access-checked
//	Free(pool) int64                          free IPs, counting reservations still in flight
//	Pool(name)                                a pool from the cache and whether it is usable
//	Check(pod, node) error                    would Allocate succeed? caches only (scheduler Filter)
//	Allocate(ctx, Request{Pod, Node, Phase})  the pod's existing claim (sticky, or this instance's),
//	                                          else its requested IP, else a free IP; Phase is
//	                                          Reserved (scheduler) or Bound (CNI daemon)
//	Bind(ctx, pod, node, containerID)         Reserved → Bound; ReasonNotReserved if no claim
//	Release(ctx, claim, reason)               delete exactly that claim version; idempotent
//	ReleasePod(ctx, ns, name, uid)            release what ends with a pod instance (OnDelete)
//
// Modes and policies (ParseIntent): StatefulSet pods are Sticky (the IP follows namespace + pod
// name across nodes) with OnScaleDown; pods with ecloud.io/ip-address are Sticky (kind Static) with
// OnDelete; all other pods are Ephemeral with OnDelete. ecloud.io/ip-policy (sticky|ephemeral) and
// ecloud.io/ip-release (OnDelete|OnScaleDown|Never) override the defaults.
//
// A create whose outcome is unknown (connection lost) keeps its IP off the free set and makes the
// next lookup for that pod ask the apiserver, so a retry never gives the pod a second IP.
//
// Refusals are *Error with a Reason (ReasonOf, or errors.Is with ErrPoolExhausted and the other
// sentinels): PoolExhausted ("pool exhausted", names the pools), NamespaceNotAllowed (names pool and
// namespace), IPHeld (names the holder), UnknownPool, IPOutsidePool, MalformedAnnotation (names the
// annotation), PoolUnusable, NoPool, NodeNotReached, NotReserved. Other errors are API failures.
package ipam
