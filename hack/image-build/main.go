// Command image-build packs static binaries into a one-layer OCI image (docker-archive tarball,
// importable with `ctr -n k8s.io images import`) without Docker or a registry.
//
//	image-build -ref ecloud/netd:dev -o netd.tar -file bin/netd=/usr/local/bin/netd \
//	    -file bin/ecloud-cni=/usr/local/bin/ecloud-cni -entrypoint /usr/local/bin/netd
//
// The first -file is the entrypoint unless -entrypoint is given. -tree DIR=/ copies a whole
// directory tree (modes and symlinks kept), e.g. Debian packages extracted with dpkg-deb -x.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

type fileFlags []File

func (f *fileFlags) String() string { return fmt.Sprint(*f) }

func (f *fileFlags) Set(v string) error {
	src, dest, ok := strings.Cut(v, "=")
	if !ok || src == "" || dest == "" {
		return fmt.Errorf("want SOURCE=/DEST, got %q", v)
	}
	*f = append(*f, File{Source: src, Dest: dest})
	return nil
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var (
		s          Spec
		files      fileFlags
		trees      fileFlags
		args, envs listFlag
		out        string
		entrypoint string
	)
	flag.StringVar(&s.Ref, "ref", "", "image reference, e.g. ecloud/netd:dev")
	flag.StringVar(&out, "o", "", "output tarball")
	flag.Var(&files, "file", "SOURCE=/DEST: a host file copied into the image (repeatable)")
	flag.Var(&trees, "tree", "SOURCE=/DEST: a host directory whose contents are copied under DEST with modes and symlinks (repeatable)")
	flag.StringVar(&entrypoint, "entrypoint", "", "entrypoint path (default: the first -file's destination)")
	flag.Var(&args, "arg", "an argument of the image's Cmd (repeatable)")
	flag.Var(&envs, "env", "NAME=VALUE in the image's environment (repeatable)")
	flag.Parse()
	s.Files, s.Trees, s.Cmd, s.Env = files, trees, args, envs
	if entrypoint == "" && len(files) > 0 {
		entrypoint = files[0].Dest
	}
	if entrypoint != "" {
		s.Entrypoint = []string{entrypoint}
	}
	if out == "" {
		fmt.Fprintln(os.Stderr, "image-build: -o is required")
		os.Exit(2)
	}
	if err := Write(s, out); err != nil {
		fmt.Fprintln(os.Stderr, "image-build:", err)
		os.Exit(1)
	}
}
