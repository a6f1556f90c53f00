package main

import (
	"flag"

	"k8s.io/klog/v2"
)

// goflagSet holds klog's flags (-v, --vmodule, …).
func goflagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	return fs
}
