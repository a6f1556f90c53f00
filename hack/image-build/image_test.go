package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!fake-binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.tar")
	spec := Spec{Ref: "ecloud/tool:dev", Files: []File{{Source: bin, Dest: "/usr/local/bin/tool"}},
		Entrypoint: []string{"/usr/local/bin/tool"}, Cmd: []string{"--v=2"}}
	if err := Write(spec, out); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("ecloud/tool:dev")
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read back %s: %v", out, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Config.Entrypoint, " "); got != "/usr/local/bin/tool" {
		t.Errorf("entrypoint %q", got)
	}
	if got := strings.Join(cfg.Config.Cmd, " "); got != "--v=2" {
		t.Errorf("cmd %q", got)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}
	for _, want := range []string{"tmp/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/tool"} {
		if entries[want] == nil {
			t.Errorf("layer lacks %s (has %v)", want, entries)
		}
	}
	if h := entries["usr/local/bin/tool"]; h != nil && (h.Mode != 0o755 || h.Size != int64(len("#!fake-binary"))) {
		t.Errorf("tool entry mode %o size %d", h.Mode, h.Size)
	}
	// Same inputs, same digest: the images are reproducible.
	img2, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Errorf("digest differs between builds: %s vs %s", d1, d2)
	}
}

func TestSpecValidate(t *testing.T) {
	ok := File{Source: "x", Dest: "/x"}
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"bad ref", Spec{Ref: "UPPER/case:dev", Files: []File{ok}, Entrypoint: []string{"/x"}}, "image reference"},
		{"no files", Spec{Ref: "a/b:c", Entrypoint: []string{"/x"}}, "no files"},
		{"relative dest", Spec{Ref: "a/b:c", Files: []File{{Source: "x", Dest: "x"}}, Entrypoint: []string{"/x"}}, "clean absolute path"},
		{"twice", Spec{Ref: "a/b:c", Files: []File{ok, ok}, Entrypoint: []string{"/x"}}, "given twice"},
		{"no entrypoint", Spec{Ref: "a/b:c", Files: []File{ok}}, "no entrypoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.want)
			}
		})
	}
	if err := (Spec{Ref: "a/b:c", Files: []File{ok}, Entrypoint: []string{"/x"}}).Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
}

func TestTreeKeepsModesAndSymlinks(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"usr/lib/x86_64-linux-gnu", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libx.so.1"), []byte("lib"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/sbin/daemon"), []byte("bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sup")
	if err := os.WriteFile(bin, []byte("sup"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Ref: "ecloud/ovs:dev", Trees: []File{{Source: root, Dest: "/"}},
		Files: []File{{Source: bin, Dest: "/usr/local/bin/sup"}}, Entrypoint: []string{"/usr/local/bin/sup"}}
	data, err := layerTar(spec)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}
	if h := entries["lib"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/lib" {
		t.Errorf("lib symlink: %+v", h)
	}
	if h := entries["usr/lib/x86_64-linux-gnu/libx.so.1"]; h == nil || h.Mode != 0o644 || h.Size != 3 {
		t.Errorf("library entry: %+v", h)
	}
	if h := entries["usr/sbin/daemon"]; h == nil || h.Mode != 0o755 {
		t.Errorf("daemon entry: %+v", h)
	}
	if entries["usr/local/bin/sup"] == nil || entries["usr/local/"] == nil || entries["tmp/"] == nil {
		t.Errorf("entries: %v", entries)
	}
	// A file given both in a tree and with -file is refused.
	spec.Files = append(spec.Files, File{Source: bin, Dest: "/usr/sbin/daemon"})
	if _, err := layerTar(spec); err == nil || !strings.Contains(err.Error(), "also in a tree") {
		t.Errorf("duplicate destination: %v", err)
	}
}
