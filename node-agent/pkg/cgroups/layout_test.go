package cgroups

import "testing"

func TestPodDir(t *testing.T) {
	const uid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
	for _, tc := range []struct {
		driver Driver
		parent string
		qos    string
		want   string
	}{
		{DriverCgroupfs, "/", QoSBurstable, "/kubepods/burstable/pod" + uid},
		{DriverCgroupfs, "/", QoSBestEffort, "/kubepods/besteffort/pod" + uid},
		{DriverCgroupfs, "/", QoSGuaranteed, "/kubepods/pod" + uid},
		{DriverCgroupfs, "/custom", QoSGuaranteed, "/custom/kubepods/pod" + uid},
		{DriverSystemd, "/", QoSBurstable, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice"},
		{DriverSystemd, "/", QoSGuaranteed, "/kubepods.slice/kubepods-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice"},
	} {
		h := Hierarchy{Root: "/sys/fs/cgroup", Version: V2, Driver: tc.driver, Parent: tc.parent}
		if got := h.PodDir(tc.qos, uid); got != tc.want {
			t.Errorf("%s %s %s: PodDir = %q, want %q", tc.driver, tc.parent, tc.qos, got, tc.want)
		}
	}
}

func TestPath(t *testing.T) {
	v1 := Hierarchy{Root: "/r", Version: V1}
	v2 := Hierarchy{Root: "/r", Version: V2}
	if got := v1.Path("memory", "/kubepods/x"); got != "/r/memory/kubepods/x" {
		t.Errorf("v1 Path = %q", got)
	}
	if got := v2.Path("memory", "/kubepods/x"); got != "/r/kubepods/x" {
		t.Errorf("v2 Path = %q", got)
	}
}

func TestSplitContainerID(t *testing.T) {
	for in, want := range map[string][2]string{
		"containerd://abc": {"containerd", "abc"},
		"cri-o://def":      {"cri-o", "def"},
		"ghi":              {"", "ghi"},
	} {
		rt, id := SplitContainerID(in)
		if rt != want[0] || id != want[1] {
			t.Errorf("SplitContainerID(%q) = %q, %q; want %q", in, rt, id, want)
		}
	}
}

func TestParseAndLines(t *testing.T) {
	if v, err := ParseUint([]byte("12345")); err != nil || v != 12345 {
		t.Errorf("ParseUint = %v, %v", v, err)
	}
	for _, bad := range []string{"", "12a", "-1"} {
		if _, err := ParseUint([]byte(bad)); err == nil {
			t.Errorf("ParseUint(%q) accepted", bad)
		}
	}
	got := map[string]uint64{}
	ForEachKeyUint([]byte("a 1\nb  2\n\nc x\nd 4"), func(k []byte, v uint64) { got[string(k)] = v })
	if len(got) != 3 || got["a"] != 1 || got["b"] != 2 || got["d"] != 4 {
		t.Errorf("ForEachKeyUint = %v", got)
	}
}
