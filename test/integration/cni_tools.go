//go:build tools

// Keeps cnitool (built by the CNI integration tests) in go.mod.
package integration

import _ "github.com/containernetworking/cni/cnitool"
