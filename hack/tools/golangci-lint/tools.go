//go:build tools

// Package golangcilint pins golangci-lint, which `make verify` runs, in a module of its own: its
// many dependencies never touch the project's go.mod nor the code generators' versions.
package golangcilint

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
)
