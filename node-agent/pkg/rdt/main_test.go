package rdt_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv carries the fake resctrl directory to the re-executed test binary.
const childEnv = "ECLOUD_NODE_AGENT_RDT_CHILD"

// TestMain: in the re-executed child (own mount namespace) make goresctrl find the fake resctrl
// tree: goresctrl only looks at /proc/mounts, so a file naming the fake tree as a resctrl mount is
// bind-mounted over /proc/self/mounts.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := fakeMounts(dir); err != nil {
			fmt.Fprintln(os.Stderr, "set up fake resctrl mount:", err)
			os.Exit(3)
		}
	}
	os.Exit(m.Run())
}

func fakeMounts(dir string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / rprivate: %w", err)
	}
	mounts := filepath.Join(dir, "mounts")
	line := fmt.Sprintf("resctrl %s resctrl rw,relatime 0 0\n", filepath.Join(dir, "resctrl"))
	if err := os.WriteFile(mounts, []byte(line), 0o644); err != nil {
		return err
	}
	if err := unix.Mount(mounts, "/proc/self/mounts", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s over /proc/self/mounts: %w", mounts, err)
	}
	return nil
}
