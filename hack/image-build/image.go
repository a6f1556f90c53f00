package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
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
// nothing else: no shell, no libc).
type Spec struct {
	Ref        string
	Files      []File
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
	if len(s.Files) == 0 {
		return fmt.Errorf("image %s: no files", s.Ref)
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
	cfg.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin:/"}, s.Env...)
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

// layerTar is the single layer: /tmp (1777), the parent directories of every file, the files.
func layerTar(s Spec) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{"tmp": true}
	for _, f := range s.Files {
		for d := path.Dir(strings.TrimPrefix(f.Dest, "/")); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: mode, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return nil, fmt.Errorf("image %s: directory %s: %w", s.Ref, d, err)
		}
	}
	for _, f := range s.Files {
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Ref, err)
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(f.Dest, "/"), Mode: 0o755, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("image %s: file %s: %w", s.Ref, f.Dest, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("image %s: file %s: %w", s.Ref, f.Dest, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image %s: close layer: %w", s.Ref, err)
	}
	return buf.Bytes(), nil
}
