package cgroups

import "testing"

func TestParentFromCgroupFile(t *testing.T) {
	cases := []struct {
		name, content string
		v             Version
		want          string
		wantErr       bool
	}{
		{"v1 cgroupfs at the root", "12:pids:/kubepods/burstable/podx/c1\n4:cpu,cpuacct:/kubepods/burstable/podx/c1\n", V1, "/", false},
		{"v1 cgroupfs below a custom cgroupRoot", "4:cpu,cpuacct:/eup/dc-a-node-0/pods/kubepods/podx/c1\n", V1, "/eup/dc-a-node-0/pods", false},
		{"v1 systemd", "3:cpu,cpuacct:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podx.slice/cri-containerd-c1.scope\n", V1, "/", false},
		{"v2 systemd below a slice", "0::/custom.slice/kubepods.slice/kubepods-podx.slice/cri-containerd-c1.scope\n", V2, "/custom.slice", false},
		{"v1: cpuacct alone is not cpu", "5:cpuacct:/x/kubepods/p/c\n4:cpu:/eup/kubepods/p/c\n", V1, "/eup", false},
		{"not in a pod", "4:cpu,cpuacct:/user.slice/session-1.scope\n", V1, "", true},
		{"no cpu hierarchy", "0::/kubepods/p/c\n", V1, "", true},
		{"kubepodsX is not kubepods", "4:cpu:/a/kubepodsX/p\n", V1, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParentFromCgroupFile(tc.content, tc.v)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
