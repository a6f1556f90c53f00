package rdt_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fakeKernel plays the kernel's part of a fake resctrl tree: resctrl fills a directory when
// someone mkdirs it, so does this, from an inotify watch, only for directories somebody else
// created (the agent, through goresctrl):
//   - a control group <root>/<name>: tasks, cpus, schemata (the root's), mon_groups/, mon_data/;
//   - a monitoring group <root>/<group>/mon_groups/<name>: tasks and mon_data with fixed counters
//     (domain 00: 1 MiB occupancy, 5000 B total and 4000 B local bandwidth; domain 01: 1 MiB
//     occupancy).
//
// Unlike the kernel it fills them a moment after the mkdir: an agent that writes a group's tasks
// right after creating it may find no file yet and must retry (the agent's loop does). Files are
// created only when missing, so a schemata the agent wrote first stays.
type fakeKernel struct {
	t    *testing.T
	root string
	f    *os.File
	mu   sync.Mutex
	dirs map[int32]string // watch descriptor -> directory
	made []string         // directories filled, in order
	done chan struct{}
}

// monCounters are the files of a monitoring group's mon_data and their contents.
var monCounters = map[string]string{
	"mon_L3_00/llc_occupancy":   "1048576\n",
	"mon_L3_00/mbm_total_bytes": "5000\n",
	"mon_L3_00/mbm_local_bytes": "4000\n",
	"mon_L3_01/llc_occupancy":   "1048576\n",
}

func startFakeKernel(t *testing.T, root string) *fakeKernel {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	k := &fakeKernel{t: t, root: root, f: os.NewFile(uintptr(fd), "inotify"), dirs: map[int32]string{}, done: make(chan struct{})}
	k.watch(root)
	go k.run()
	t.Cleanup(func() {
		_ = k.f.Close()
		<-k.done
	})
	return k
}

func (k *fakeKernel) watch(dir string) {
	wd, err := unix.InotifyAddWatch(int(k.f.Fd()), dir, unix.IN_CREATE|unix.IN_ONLYDIR)
	if err != nil {
		k.t.Errorf("fake kernel: watch %s: %v", dir, err)
		return
	}
	k.mu.Lock()
	k.dirs[int32(wd)] = dir
	k.mu.Unlock()
}

func (k *fakeKernel) run() {
	defer close(k.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.PathMax))
	for {
		n, err := k.f.Read(buf)
		if err != nil {
			return // closed at cleanup
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_ISDIR == 0 {
				continue
			}
			k.mu.Lock()
			parent := k.dirs[ev.Wd]
			k.mu.Unlock()
			k.created(filepath.Join(parent, name))
		}
	}
}

// created fills a directory somebody made, as the kernel would.
func (k *fakeKernel) created(dir string) {
	parent := filepath.Dir(dir)
	switch {
	case parent == k.root && !strings.HasPrefix(filepath.Base(dir), "info") && filepath.Base(dir) != "mon_data" && filepath.Base(dir) != "mon_groups":
		schemata, err := os.ReadFile(filepath.Join(k.root, "schemata"))
		if err != nil {
			k.t.Errorf("fake kernel: %v", err)
			return
		}
		k.files(dir, map[string]string{"tasks": "", "cpus": "0\n", "schemata": string(schemata)})
		k.mkdir(filepath.Join(dir, "mon_data"))
		mon := filepath.Join(dir, "mon_groups")
		k.mkdir(mon)
		k.watch(mon)
		// Monitoring groups made before the watch existed.
		entries, _ := os.ReadDir(mon)
		for _, e := range entries {
			if e.IsDir() {
				k.created(filepath.Join(mon, e.Name()))
			}
		}
	case filepath.Base(parent) == "mon_groups":
		files := map[string]string{"tasks": ""}
		for f, v := range monCounters {
			files["mon_data/"+f] = v
		}
		k.files(dir, files)
	default:
		return
	}
	k.mu.Lock()
	k.made = append(k.made, strings.TrimPrefix(dir, k.root+"/"))
	k.mu.Unlock()
}

func (k *fakeKernel) mkdir(dir string) {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		k.t.Errorf("fake kernel: %v", err)
	}
}

// files creates each file that does not exist yet.
func (k *fakeKernel) files(dir string, files map[string]string) {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			k.t.Errorf("fake kernel: %v", err)
			continue
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			k.t.Errorf("fake kernel: %v", err)
			continue
		}
		_, err = f.WriteString(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			k.t.Errorf("fake kernel: write %s: %v", p, err)
		}
	}
}

// filled returns the directories the fake kernel filled (relative to the resctrl root).
func (k *fakeKernel) filled() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.made...)
}
