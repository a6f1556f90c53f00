// Package guest_test tests the guest node's scripts that can run outside the guest.
package guest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeCtr answers `ctr --address SOCK -n k8s.io images import DIR/NAME.tar` as ctr does: the
// image's name and "saved" on success; on failure ctr's "ctr: " error line and exit status 1.
// FAIL_TIMES_NAME (e.g. FAIL_TIMES_workload=1) is how many of NAME's first imports fail.
const fakeCtr = `#!/bin/bash
tar=${@: -1}; name=$(basename "$tar" .tar)
n=$(cat "$STATE/$name" 2>/dev/null || echo 0); echo $((n + 1)) >"$STATE/$name"
fails=FAIL_TIMES_$name
if [ "$n" -lt "${!fails:-0}" ]; then
  echo "ctr: failed to unpack image on snapshotter overlayfs: try $((n + 1)) of $name" >&2
  exit 1
fi
printf 'docker.io/ecloud/%s:dev\tsaved\n' "$name"
`

func TestImportImages(t *testing.T) {
	script, err := filepath.Abs("import-images.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		fail      map[string]string // FAIL_TIMES_ per image
		wantOut   []string
		wantErr   bool
		wantTries map[string]string // imports per image
		firstLogs []string          // images whose first log is kept as .1
	}{
		{name: "all imported at the first try",
			wantTries: map[string]string{"pause": "1", "workload": "1", "ovs": "1"}},
		{name: "a failed import is tried once more alone", fail: map[string]string{"workload": "1"},
			wantOut:   []string{"WARNING: importing IMAGES/workload.tar failed (ctr: failed to unpack image on snapshotter overlayfs: try 1 of workload); trying once more alone"},
			wantTries: map[string]string{"pause": "1", "workload": "2", "ovs": "1"}, firstLogs: []string{"workload"}},
		{name: "a second failure names ctr's error", fail: map[string]string{"ovs": "2"}, wantErr: true,
			wantOut: []string{
				"WARNING: importing IMAGES/ovs.tar failed (ctr: failed to unpack image on snapshotter overlayfs: try 1 of ovs); trying once more alone",
				"FAILED: importing IMAGES/ovs.tar: ctr: failed to unpack image on snapshotter overlayfs: try 2 of ovs (logs/images-ovs.log, the first try in logs/images-ovs.log.1)"},
			wantTries: map[string]string{"pause": "1", "workload": "1", "ovs": "2"}, firstLogs: []string{"ovs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			state, logs := filepath.Join(dir, "state"), filepath.Join(dir, "logs")
			for _, d := range []string{state, logs} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ctr := filepath.Join(dir, "ctr")
			if err := os.WriteFile(ctr, []byte(fakeCtr), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(script, "pause", "workload", "ovs")
			cmd.Env = append(os.Environ(), "CTR="+ctr+" --address /run/containerd/containerd.sock",
				"IMAGE_DIR=IMAGES", "LOG_DIR="+logs, "STATE="+state)
			for img, n := range tc.fail {
				cmd.Env = append(cmd.Env, "FAIL_TIMES_"+img+"="+n)
			}
			out, err := cmd.Output()
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("exit error %v, want one: %t (output %q)", err, tc.wantErr, out)
			}
			var lines []string
			if s := strings.TrimSpace(string(out)); s != "" {
				lines = strings.Split(s, "\n")
			}
			if !slices.Equal(lines, tc.wantOut) {
				t.Errorf("output\n%q\nwant\n%q", lines, tc.wantOut)
			}
			for img, want := range tc.wantTries {
				got, _ := os.ReadFile(filepath.Join(state, img))
				if strings.TrimSpace(string(got)) != want {
					t.Errorf("%s imported %q times, want %s", img, got, want)
				}
				_, err := os.Stat(filepath.Join(logs, "images-"+img+".log.1"))
				if kept := err == nil; kept != slices.Contains(tc.firstLogs, img) {
					t.Errorf("%s: first log kept %t, want %t", img, kept, !kept)
				}
				log, _ := os.ReadFile(filepath.Join(logs, "images-"+img+".log"))
				if !tc.wantErr && !strings.Contains(string(log), "saved") {
					t.Errorf("%s's log %q lacks ctr's output", img, log)
				}
			}
		})
	}
}
