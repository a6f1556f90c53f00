// Package manifests_test checks the kustomize manifests of this directory as a cluster would take
// them: every entry point builds, the install lands in kube-system with least-privilege RBAC, the
// scheduler configuration enables ecloud's plugins, and every container flag exists in its binary.
package manifests_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	schedconfigv1 "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// build renders a kustomization directory (relative to this package) the way
// `kubectl apply -k` does and decodes every object.
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatalf("%s: %s does not parse: %v", dir, r.CurId(), err)
		}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			t.Fatalf("%s: object without apiVersion, kind or name:\n%s", dir, y)
		}
		objs = append(objs, u)
	}
	return objs
}

func id(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s does not decode strictly: %v", id(u), err)
	}
	return out
}

var kustomizations = []string{".", "overlays/replace-default-scheduler", "overlays/host-ovs", "examples", "crds"}

func TestKustomizationsBuild(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			if objs := build(t, dir); len(objs) == 0 {
				t.Fatalf("%s renders no objects", dir)
			}
		})
	}
}

// TestInstallObjects checks the kube-system install: everything namespaced lands in kube-system,
// every workload's ServiceAccount is part of it, and the images follow ecloud/<binary>:dev.
func TestInstallObjects(t *testing.T) {
	for _, dir := range []string{".", "overlays/replace-default-scheduler", "overlays/host-ovs"} {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			sas := map[string]bool{}
			kinds := map[string]int{}
			for _, u := range objs {
				kinds[u.GetKind()]++
				if u.GetKind() == "ServiceAccount" {
					sas[u.GetNamespace()+"/"+u.GetName()] = true
				}
			}
			for _, want := range []string{"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Deployment", "DaemonSet", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ConfigMap"} {
				if kinds[want] == 0 {
					t.Errorf("%s has no %s", dir, want)
				}
			}
			workloads := 0
			for _, u := range objs {
				if u.GetNamespace() != "" && u.GetNamespace() != "kube-system" {
					t.Errorf("%s is not in kube-system", id(u))
				}
				if u.GetKind() != "Deployment" && u.GetKind() != "DaemonSet" {
					continue
				}
				workloads++
				sa, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "serviceAccountName")
				if sa == "" || !sas[u.GetNamespace()+"/"+sa] {
					t.Errorf("%s runs as ServiceAccount %q, which the install does not create", id(u), sa)
				}
				containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
				for _, c := range containers {
					c := c.(map[string]any)
					image, _ := c["image"].(string)
					if !strings.HasPrefix(image, "ecloud/") || !strings.HasSuffix(image, ":dev") || c["imagePullPolicy"] != "IfNotPresent" {
						t.Errorf("%s container %v: image %q pull policy %v, want ecloud/<binary>:dev IfNotPresent", id(u), c["name"], image, c["imagePullPolicy"])
					}
				}
			}
			if workloads != 6 {
				t.Errorf("%s has %d Deployments/DaemonSets, want 6 (ecloud-scheduler, controller, ip-controller, location-relay, netd, node-agent)", dir, workloads)
			}
		})
	}
}

// TestRBACNoWildcards: least privilege, no "*" verb, resource, API group or non-resource URL.
func TestRBACNoWildcards(t *testing.T) {
	for _, dir := range kustomizations {
		for _, u := range build(t, dir) {
			var rules []rbacv1.PolicyRule
			switch u.GetKind() {
			case "ClusterRole":
				rules = convert[rbacv1.ClusterRole](t, u).Rules
			case "Role":
				rules = convert[rbacv1.Role](t, u).Rules
			default:
				continue
			}
			if len(rules) == 0 {
				t.Errorf("%s: %s has no rules", dir, id(u))
			}
			for i, r := range rules {
				for field, values := range map[string][]string{"verbs": r.Verbs, "resources": r.Resources, "apiGroups": r.APIGroups, "nonResourceURLs": r.NonResourceURLs} {
					for _, v := range values {
						if strings.Contains(v, "*") {
							t.Errorf("%s: %s rules[%d].%s has wildcard %q", dir, id(u), i, field, v)
						}
					}
				}
				if len(r.Verbs) == 0 {
					t.Errorf("%s: %s rules[%d] has no verbs", dir, id(u), i)
				}
			}
		}
	}
}

// TestBindingsReferToSubjectsThatExist: every ServiceAccount subject of the install's bindings is
// created by the install, and every role it binds to is either created by it or a bootstrap role.
func TestBindingsReferToSubjectsThatExist(t *testing.T) {
	objs := build(t, ".")
	have := map[string]bool{}
	for _, u := range objs {
		have[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = true
	}
	for _, u := range objs {
		var ref rbacv1.RoleRef
		var subjects []rbacv1.Subject
		switch u.GetKind() {
		case "ClusterRoleBinding":
			b := convert[rbacv1.ClusterRoleBinding](t, u)
			ref, subjects = b.RoleRef, b.Subjects
		case "RoleBinding":
			b := convert[rbacv1.RoleBinding](t, u)
			ref, subjects = b.RoleRef, b.Subjects
		default:
			continue
		}
		for _, s := range subjects {
			if s.Kind == "ServiceAccount" && !have["ServiceAccount "+s.Namespace+"/"+s.Name] {
				t.Errorf("%s binds ServiceAccount %s/%s, which the install does not create", id(u), s.Namespace, s.Name)
			}
		}
		ns := ""
		if ref.Kind == "Role" {
			ns = u.GetNamespace()
		}
		bootstrap := strings.HasPrefix(ref.Name, "system:") || ref.Name == "extension-apiserver-authentication-reader"
		if !bootstrap && !have[ref.Kind+" "+ns+"/"+ref.Name] {
			t.Errorf("%s refers to %s %s, which the install does not create", id(u), ref.Kind, ref.Name)
		}
	}
}

func TestSchedulerConfigEnablesEcloudPlugins(t *testing.T) {
	for _, dir := range []string{".", "overlays/replace-default-scheduler"} {
		objs := build(t, dir)
		found := false
		for _, u := range objs {
			if u.GetKind() != "ConfigMap" || u.GetName() != "ecloud-scheduler-config" {
				continue
			}
			found = true
			raw, _, _ := unstructured.NestedString(u.Object, "data", "config.yaml")
			cfg := &schedconfigv1.KubeSchedulerConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(raw), cfg); err != nil {
				t.Fatalf("%s: scheduler config: %v", dir, err)
			}
			if cfg.Kind != "KubeSchedulerConfiguration" || cfg.LeaderElection.LeaderElect == nil || !*cfg.LeaderElection.LeaderElect || len(cfg.Profiles) != 1 {
				t.Fatalf("%s: scheduler config %+v: want one profile, leader election on", dir, cfg)
			}
			if cfg.Profiles[0].SchedulerName == nil || cfg.Profiles[0].Plugins == nil {
				t.Fatalf("%s: scheduler config: profile without name or plugins", dir)
			}
			args := map[string]bool{}
			for _, pc := range cfg.Profiles[0].PluginConfig {
				args[pc.Name] = len(pc.Args.Raw) > 0
			}
			if !args["DualDatacenter"] {
				t.Errorf("%s: no args for DualDatacenter", dir)
			}
			enabled := map[string]bool{}
			for _, p := range cfg.Profiles[0].Plugins.MultiPoint.Enabled {
				enabled[p.Name] = true
			}
			if !enabled["DualDatacenter"] || !enabled["IPPool"] {
				t.Errorf("%s: profile %s enables %v, want DualDatacenter and IPPool", dir, *cfg.Profiles[0].SchedulerName, enabled)
			}
			// DualDatacenter's PostFilter preempts; DefaultPreemption would run first without the rule.
			if pf := cfg.Profiles[0].Plugins.PostFilter.Disabled; len(pf) != 1 || pf[0].Name != "DefaultPreemption" {
				t.Errorf("%s: postFilter disabled %v, want [DefaultPreemption]", dir, pf)
			}
			want := map[string]string{".": "ecloud-scheduler", "overlays/replace-default-scheduler": "default-scheduler"}[dir]
			if *cfg.Profiles[0].SchedulerName != want {
				t.Errorf("%s: profile %q, want %q", dir, *cfg.Profiles[0].SchedulerName, want)
			}
			// The controller reads the same ConfigMap and must pick the profile the scheduler runs.
			if args := containerArgs(t, objs, "Deployment", "ecloud-controller"); !slices.Contains(args, "--scheduler-name="+want) {
				t.Errorf("%s: ecloud-controller args %v, want --scheduler-name=%s", dir, args, want)
			}
		}
		if !found {
			t.Errorf("%s: no ConfigMap ecloud-scheduler-config", dir)
		}
	}
}

// containerArgs returns the first container's args of the workload kind/name in objs.
func containerArgs(t *testing.T, objs []*unstructured.Unstructured, kind, name string) []string {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() != kind || u.GetName() != name {
			continue
		}
		ctrs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		if len(ctrs) == 0 {
			t.Fatalf("%s %s has no containers", kind, name)
		}
		args, _, _ := unstructured.NestedStringSlice(ctrs[0].(map[string]any), "args")
		return args
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

func TestExamples(t *testing.T) {
	replicas := map[string]int64{}
	pools := 0
	for _, u := range build(t, "examples") {
		switch u.GetKind() {
		case "IPPool":
			pools++
		case "Deployment", "StatefulSet":
			n, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
			replicas[u.GetKind()+"/"+u.GetName()] = n
			sched, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "schedulerName")
			if sched != "ecloud-scheduler" {
				t.Errorf("%s uses scheduler %q", id(u), sched)
			}
		}
	}
	want := map[string]int64{"Deployment/static": 1, "StatefulSet/stateful": 4, "Deployment/stateless": 6}
	for k, n := range want {
		if replicas[k] != n {
			t.Errorf("%s has %d replicas, want %d", k, replicas[k], n)
		}
	}
	if pools != 3 {
		t.Errorf("%d IPPools, want 3 (one per datacenter, one spanning both)", pools)
	}
}

// TestNetdShipsOVS: the default install runs Open vSwitch in the netd DaemonSet (container ovs,
// database on a hostPath, the host's kernel modules), the host-ovs overlay does not and needs
// the host's /run/openvswitch.
func TestNetdShipsOVS(t *testing.T) {
	for _, tt := range []struct {
		dir     string
		shipped bool
	}{{".", true}, {"overlays/host-ovs", false}} {
		var ds *unstructured.Unstructured
		for _, u := range build(t, tt.dir) {
			if u.GetKind() == "DaemonSet" && u.GetName() == "ecloud-netd" {
				ds = u
			}
		}
		if ds == nil {
			t.Fatalf("%s: no DaemonSet ecloud-netd", tt.dir)
		}
		containers, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
		names := map[string]bool{}
		for _, c := range containers {
			names[c.(map[string]any)["name"].(string)] = true
		}
		volumes, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "volumes")
		hostPaths := map[string]string{}
		for _, v := range volumes {
			v := v.(map[string]any)
			hp, _, _ := unstructured.NestedString(v, "hostPath", "path")
			typ, _, _ := unstructured.NestedString(v, "hostPath", "type")
			hostPaths[hp] = typ
		}
		if !names["netd"] || names["ovs"] != tt.shipped {
			t.Errorf("%s: containers %v, want netd and ovs=%v", tt.dir, names, tt.shipped)
		}
		_, db := hostPaths["/var/lib/ecloud/ovs"]
		if db != tt.shipped {
			t.Errorf("%s: OVS database hostPath present=%v, want %v", tt.dir, db, tt.shipped)
		}
		if want := map[bool]string{true: "DirectoryOrCreate", false: "Directory"}[tt.shipped]; hostPaths["/run/openvswitch"] != want {
			t.Errorf("%s: /run/openvswitch hostPath type %q, want %s", tt.dir, hostPaths["/run/openvswitch"], want)
		}
	}
}
