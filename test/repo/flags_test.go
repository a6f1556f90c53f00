package repo

import (
	"encoding/json"
	goflag "flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/plugin"
	configv1 "github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/v1"
)

// notShipped are main packages that are not ecloud binaries: build and test tools.
var notShipped = []string{"/hack/", "/test/", "/bench/"}

// kubeSchedulerCommand are binaries that run kube-scheduler's command unchanged: their flags are
// kube-scheduler's, checked by TestReferenceScheduler instead of built and listed.
var kubeSchedulerCommand = map[string]bool{"ecloud-scheduler": true}

// shippedBinaries lists every ecloud binary (a main package of the module outside the tools), by
// name, with its package.
func shippedBinaries(t *testing.T) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{if eq .Name "main"}}{{.ImportPath}}{{end}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	bins := map[string]string{}
next:
	for _, pkg := range strings.Fields(string(out)) {
		for _, skip := range notShipped {
			if strings.Contains(pkg+"/", skip) {
				continue next
			}
		}
		bins[filepath.Base(pkg)] = pkg
	}
	return bins
}

// helpFlag is one flag as --help prints it.
type helpFlag struct {
	name, typ, def, usage string
}

// pflag's usage line: "  -v, --v Level   usage (default 2)"; bool flags have no type word.
var helpLine = regexp.MustCompile(`^\s+(?:-[A-Za-z0-9], )?--([A-Za-z0-9_-]+)(?: ([A-Za-z0-9.]+))?\s{2,}(.*)$`)
var helpDefault = regexp.MustCompile(`\(default (.*)\)$`)

func parseHelp(out string) map[string]helpFlag {
	flags := map[string]helpFlag{}
	for _, l := range strings.Split(out, "\n") {
		m := helpLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f := helpFlag{name: m[1], typ: m[2], usage: m[3]}
		if d := helpDefault.FindStringSubmatch(m[3]); d != nil {
			f.def = strings.Trim(d[1], `"`)
		}
		flags[f.name] = f
	}
	return flags
}

// zeroValues are the defaults --help leaves out.
var zeroValues = map[string]bool{"": true, "false": true, "0": true, "0s": true, "[]": true}

// docDefault reads a table's default cell: the value in backticks, or "" for "—".
func docDefault(cell string) string {
	if spans := codeSpans(cell); len(spans) > 0 {
		return spans[0]
	}
	return ""
}

// buildBinaries builds the main packages into a temporary directory in one go build.
func buildBinaries(t *testing.T, bins map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/"}
	for name, pkg := range bins {
		if !kubeSchedulerCommand[name] {
			args = append(args, pkg)
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir
}

// TestReferenceFlags builds every ecloud binary and compares its --help with the binary's table in
// docs/reference.md: the same flags, the same defaults.
func TestReferenceFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the ecloud binaries")
	}
	bins := shippedBinaries(t)
	bin := buildBinaries(t, bins)
	secs := sections(readRepoFile(t, referencePath))
	logging := loggingFlags(t)
	for name := range bins {
		if kubeSchedulerCommand[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, name), "--help")
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no NODE_NAME: the documented defaults
			out, _ := cmd.CombinedOutput()                  // exit code 0 (pflag) or 2 (flag)
			help := parseHelp(string(out))
			lines, ok := subtree(secs, name)
			if !ok {
				t.Fatalf("%s: add a section \"### %s\" under Flags with a table of its flags (| flag | default | meaning |), or saying it has none", referencePath, name)
			}
			doc := map[string]string{}
			for _, row := range tableRows(lines) {
				spans := codeSpans(row[0])
				if len(spans) == 0 || !strings.HasPrefix(spans[0], "--") || len(row) < 2 {
					continue
				}
				doc[strings.TrimPrefix(spans[0], "--")] = docDefault(row[1])
			}
			if strings.Contains(strings.Join(lines, "\n"), "[logging flags](#logging-flags)") {
				for f := range logging {
					if _, ok := doc[f]; !ok {
						doc[f] = logging[f]
					}
				}
			}
			checkFlags(t, name, help, doc)
		})
	}
}

func checkFlags(t *testing.T, binary string, help map[string]helpFlag, doc map[string]string) {
	t.Helper()
	var add, remove, fix []string
	for n, f := range help {
		d, ok := doc[n]
		if !ok {
			def := f.def
			if def == "" {
				def = "—"
			}
			add = append(add, fmt.Sprintf("  | `--%s` | `%s` | %s |", n, def, strings.TrimSpace(helpDefault.ReplaceAllString(f.usage, ""))))
			continue
		}
		if d != f.def && !(f.def == "" && zeroValues[d]) {
			fix = append(fix, fmt.Sprintf("  --%s: the default is %q, the table says %q", n, f.def, d))
		}
	}
	for n := range doc {
		if _, ok := help[n]; !ok {
			remove = append(remove, "  --"+n)
		}
	}
	sort.Strings(add)
	sort.Strings(remove)
	sort.Strings(fix)
	if len(add) > 0 {
		t.Errorf("%s: add these rows to the table of %s:\n%s", referencePath, binary, strings.Join(add, "\n"))
	}
	if len(remove) > 0 {
		t.Errorf("%s: remove these flags from the table of %s (%s --help has no such flag):\n%s", referencePath, binary, binary, strings.Join(remove, "\n"))
	}
	if len(fix) > 0 {
		t.Errorf("%s: fix these defaults in the table of %s:\n%s", referencePath, binary, strings.Join(fix, "\n"))
	}
}

// loggingFlags checks the Logging flags table against klog's flags and returns it.
func loggingFlags(t *testing.T) map[string]string {
	t.Helper()
	lines, ok := subtree(sections(readRepoFile(t, referencePath)), "Logging flags")
	if !ok {
		t.Fatalf("%s: add a section \"### Logging flags\" with klog's flags", referencePath)
	}
	doc := map[string]string{}
	for _, row := range tableRows(lines) {
		if spans := codeSpans(row[0]); len(spans) > 0 && len(row) > 1 {
			doc[strings.TrimPrefix(spans[0], "--")] = docDefault(row[1])
		}
	}
	fs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(fs)
	help := map[string]helpFlag{}
	fs.VisitAll(func(f *goflag.Flag) {
		def := f.DefValue
		if zeroValues[def] {
			def = ""
		}
		help[f.Name] = helpFlag{name: f.Name, def: def, usage: f.Usage}
	})
	checkFlags(t, "Logging flags", help, doc)
	return doc
}

// TestReferenceScheduler: ecloud-scheduler runs kube-scheduler's command unchanged (plugins add no
// flags), as the reference says, and the DualDatacenter args table matches the args type and its
// defaults.
func TestReferenceScheduler(t *testing.T) {
	secs := sections(readRepoFile(t, referencePath))
	lines, ok := subtree(secs, "ecloud-scheduler")
	if !ok {
		t.Fatalf("%s: add a section \"### ecloud-scheduler\"", referencePath)
	}
	main := readRepoFile(t, "scheduler-plugins/cmd/ecloud-scheduler/main.go")
	if !strings.Contains(main, "app.NewSchedulerCommand(Plugins()...)") {
		t.Errorf("scheduler-plugins/cmd/ecloud-scheduler/main.go no longer runs kube-scheduler's command as it is: " +
			"list ecloud-scheduler's own flags in " + referencePath + " and check them here")
	}

	doc := map[string]string{}
	for _, row := range tableRows(lines) {
		if spans := codeSpans(row[0]); len(spans) > 0 && len(row) > 1 {
			doc[spans[0]] = docDefault(row[1])
		}
	}
	args := &configv1.DualDatacenterArgs{}
	configv1.SetDefaults_DualDatacenterArgs(args)
	code := map[string]string{}
	rt := reflect.TypeOf(*args)
	rv := reflect.ValueOf(*args)
	for i := 0; i < rt.NumField(); i++ {
		tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
		if tag == "" {
			continue
		}
		code[tag] = jsonDefault(t, rv.Field(i).Interface())
	}
	checkKeys(t, "the DualDatacenter args of ecloud-scheduler", code, doc)
}

// TestReferenceCNIConfig: the ecloud-cni conflist keys and their defaults.
func TestReferenceCNIConfig(t *testing.T) {
	lines, ok := subtree(sections(readRepoFile(t, referencePath)), "ecloud-cni")
	if !ok {
		t.Fatalf("%s: add a section \"### ecloud-cni\"", referencePath)
	}
	doc := map[string]string{}
	for _, row := range tableRows(lines) {
		if spans := codeSpans(row[0]); len(spans) > 0 && len(row) > 1 {
			doc[spans[0]] = docDefault(row[1])
		}
	}
	conf, err := plugin.ParseNetConf([]byte(`{"cniVersion":"1.1.0","name":"ecloud"}`))
	if err != nil {
		t.Fatal(err)
	}
	code := map[string]string{}
	rt := reflect.TypeOf(*conf)
	rv := reflect.ValueOf(*conf)
	for i := 0; i < rt.NumField(); i++ {
		if rt.Field(i).Anonymous { // the CNI spec's own keys
			continue
		}
		tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
		code[tag] = jsonDefault(t, rv.Field(i).Interface())
	}
	checkKeys(t, "the ecloud-cni configuration", code, doc)
}

// jsonDefault renders a defaulted field as the table shows it ("" when unset).
func jsonDefault(t *testing.T, v any) string {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || ((rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Slice) && rv.IsNil()) {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Trim(string(b), `"`)
}

func checkKeys(t *testing.T, what string, code, doc map[string]string) {
	t.Helper()
	help := map[string]helpFlag{}
	for k, v := range code {
		if zeroValues[v] {
			v = ""
		}
		help[k] = helpFlag{name: k, def: v}
	}
	var add, remove, fix []string
	for k, v := range help {
		d, ok := doc[k]
		switch {
		case !ok:
			add = append(add, fmt.Sprintf("  `%s` (default %q)", k, v.def))
		case d != v.def && !(v.def == "" && zeroValues[d]):
			fix = append(fix, fmt.Sprintf("  `%s`: the default is %q, the table says %q", k, v.def, d))
		}
	}
	for k := range doc {
		if _, ok := help[k]; !ok {
			remove = append(remove, "  `"+k+"`")
		}
	}
	sort.Strings(add)
	sort.Strings(remove)
	sort.Strings(fix)
	if len(add) > 0 {
		t.Errorf("%s: add these keys to %s:\n%s", referencePath, what, strings.Join(add, "\n"))
	}
	if len(remove) > 0 {
		t.Errorf("%s: remove these keys from %s (the code has no such key):\n%s", referencePath, what, strings.Join(remove, "\n"))
	}
	if len(fix) > 0 {
		t.Errorf("%s: fix these defaults in %s:\n%s", referencePath, what, strings.Join(fix, "\n"))
	}
}

// readManifests returns the text of every file under manifests/.
func readManifests(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(filepath.Join(root, "manifests"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		b.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
