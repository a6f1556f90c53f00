package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one host file copied into the image at Dest (an absolute path), mode 0755.
type File struct {
	Source string
	Dest   string
}

// Spec describes a one-layer image: static binaries on a minimal base (a /tmp directory and
// nothing else: no shell, no libc), and directory trees copied as they are (e.g. the files of
// Debian packages extracted with dpkg-deb -x).
type Spec struct {
	Ref   string
	Files []File
	// Trees are host directories whose contents are copied under Dest ("/" allowed) with their
	// modes and symlinks.
	Trees      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
}

// epoch is the modification time of every entry, so that the same inputs give the same digest.
var epoch = time.Unix(0, 0)

// Validate reports what is missing or malformed in s.
func (s Spec) Validate() error {
	if _, err := name.NewTag(s.Ref); err != nil {
		return fmt.Errorf("image reference %q: %w", s.Ref, err)
	}
	if len(s.Files) == 0 && len(s.Trees) == 0 {
		return fmt.Errorf("image %s: no files", s.Ref)
	}
	for _, t := range s.Trees {
		if !path.IsAbs(t.Dest) || path.Clean(t.Dest) != t.Dest {
			return fmt.Errorf("image %s: tree %s: destination %q must be a clean absolute path", s.Ref, t.Source, t.Dest)
		}
	}
	seen := map[string]bool{}
	for _, f := range s.Files {
		if !path.IsAbs(f.Dest) || path.Clean(f.Dest) != f.Dest || f.Dest == "/" {
			return fmt.Errorf("image %s: file %s: destination %q must be a clean absolute path", s.Ref, f.Source, f.Dest)
		}
		if seen[f.Dest] {
			return fmt.Errorf("image %s: destination %s given twice", s.Ref, f.Dest)
		}
		seen[f.Dest] = true
	}
	if len(s.Entrypoint) == 0 {
		return fmt.Errorf("image %s: no entrypoint", s.Ref)
	}
	return nil
}

// Build assembles the image described by s.
func Build(s Spec) (v1.Image, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	layerBytes, err := layerTar(s)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", s.Ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("image %s: append layer: %w", s.Ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", s.Ref, err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = runtime.GOARCH
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = s.Entrypoint
	cfg.Config.Cmd = s.Cmd
	// Docker's default PATH (with the sbin directories: the ovs image's daemons live in
	// /usr/sbin), and / where the single-binary images keep their program.
	cfg.Config.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/"}, s.Env...)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image %s: set config: %w", s.Ref, err)
	}
	// containerd 1.6's importer wants a Docker v2 manifest in a docker-archive tarball.
	return mutate.MediaType(img, "application/vnd.docker.distribution.manifest.v2+json"), nil
}

// Write builds the image and writes it as a docker-archive tarball (for `ctr images import`).
func Write(s Spec, out string) error {
	img, err := Build(s)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(s.Ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", s.Ref, err)
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return fmt.Errorf("image %s: write %s: %w", s.Ref, tmp, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("image %s: %w", s.Ref, err)
	}
	return nil
}

// entry is one layer entry: a header and, for regular files, where the content comes from.
type entry struct {
	hdr    *tar.Header
	source string
}

// layerTar is the single layer: /tmp (1777), the trees, the parent directories of every file,
// the files; entries sorted by name, all with the same time (reproducible).
func layerTar(s Spec) ([]byte, error) {
	entries := map[string]*entry{"tmp": {hdr: &tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir}}}
	for _, t := range s.Trees {
		if err := treeEntries(entries, t); err != nil {
			return nil, fmt.Errorf("image %s: tree %s: %w", s.Ref, t.Source, err)
		}
	}
	for _, f := range s.Files {
		for d := path.Dir(strings.TrimPrefix(f.Dest, "/")); d != "."; d = path.Dir(d) {
			if entries[d] == nil {
				entries[d] = &entry{hdr: &tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}}
			}
		}
		name := strings.TrimPrefix(f.Dest, "/")
		if entries[name] != nil {
			return nil, fmt.Errorf("image %s: %s is also in a tree", s.Ref, f.Dest)
		}
		entries[name] = &entry{hdr: &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeReg}, source: f.Source}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime = epoch
		var data []byte
		if e.hdr.Typeflag == tar.TypeReg {
			var err error
			if data, err = os.ReadFile(e.source); err != nil {
				return nil, fmt.Errorf("image %s: %w", s.Ref, err)
			}
			e.hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("image %s: %s: %w", s.Ref, n, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("image %s: %s: %w", s.Ref, n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image %s: close layer: %w", s.Ref, err)
	}
	return buf.Bytes(), nil
}

// treeEntries adds the directories, regular files and symlinks under t.Source, placed under
// t.Dest, to entries. Other file types (devices, sockets) are refused.
func treeEntries(entries map[string]*entry, t File) error {
	base := strings.TrimPrefix(t.Dest, "/")
	for d := base; d != "" && d != "."; d = path.Dir(d) {
		if entries[d] == nil {
			entries[d] = &entry{hdr: &tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}}
		}
	}
	return filepath.WalkDir(t.Source, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(t.Source, p)
		if err != nil || rel == "." {
			return err
		}
		name := path.Join(base, filepath.ToSlash(rel))
		info, err := de.Info()
		if err != nil {
			return err
		}
		perm := int64(info.Mode().Perm())
		switch {
		case de.IsDir():
			entries[name] = &entry{hdr: &tar.Header{Name: name + "/", Mode: perm, Typeflag: tar.TypeDir}}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entries[name] = &entry{hdr: &tar.Header{Name: name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: target}}
		case info.Mode().IsRegular():
			entries[name] = &entry{hdr: &tar.Header{Name: name, Mode: perm, Typeflag: tar.TypeReg}, source: p}
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, info.Mode().Type())
		}
		return nil
	})
}
