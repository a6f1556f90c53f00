package integration

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/test/harness"
)

func validPool(name string) *v1alpha1.IPPool {
	return &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.IPPoolSpec{
			CIDR:          "10.16.0.0/24",
			Gateway:       "10.16.0.1",
			VLAN:          100,
			IncludeRanges: []v1alpha1.IPRange{{Start: "10.16.0.10", End: "10.16.0.200"}},
			ExcludeIPs:    []string{"10.16.0.50"},
			Namespaces:    []string{"shop"},
		},
	}
}

func validClaim(ip string) *v1alpha1.IPClaim {
	return &v1alpha1.IPClaim{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ClaimName(ip)},
		Spec: v1alpha1.IPClaimSpec{
			Pool: "pool-a", IP: ip,
			Owner:         v1alpha1.ClaimOwner{Namespace: "shop", PodName: "db-0", Kind: "StatefulSet", Name: "db", Ordinal: ptr.To[int32](0)},
			Mode:          v1alpha1.ModeSticky,
			ReleasePolicy: v1alpha1.ReleaseOnScaleDown,
		},
		Status: v1alpha1.IPClaimStatus{Phase: v1alpha1.PhaseReserved, Node: "dc-a-node-0"},
	}
}

// causeFields returns the field paths an Invalid error names.
func causeFields(err error) []string {
	var fields []string
	if se, ok := err.(apierrors.APIStatus); ok && se.Status().Details != nil {
		for _, c := range se.Status().Details.Causes {
			fields = append(fields, c.Field)
		}
	}
	return fields
}

func TestAPIValidation(t *testing.T) {
	cp := harness.Start(t)
	ctx := cp.Ctx

	if _, err := cp.Ecloud.IPPools().Create(ctx, validPool("pool-a"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("valid pool rejected: %v", err)
	}

	poolCases := []struct {
		name      string
		mutate    func(*v1alpha1.IPPoolSpec)
		wantField string
		wantMsg   string
	}{
		{"bad CIDR", func(s *v1alpha1.IPPoolSpec) { s.CIDR = "10.16.0.0/33" }, "spec.cidr", "must be a CIDR"},
		{"CIDR not a network address", func(s *v1alpha1.IPPoolSpec) { s.CIDR = "10.16.0.7/24" }, "spec.cidr", "host bits zero"},
		{"gateway outside CIDR", func(s *v1alpha1.IPPoolSpec) { s.Gateway = "10.17.0.1" }, "spec.gateway", "inside cidr"},
		{"gateway not an IP", func(s *v1alpha1.IPPoolSpec) { s.Gateway = "gw" }, "spec.gateway", "must be an IP"},
		{"VLAN 5000", func(s *v1alpha1.IPPoolSpec) { s.VLAN = 5000 }, "spec.vlan", "4094"},
		{"VLAN negative", func(s *v1alpha1.IPPoolSpec) { s.VLAN = -1 }, "spec.vlan", "0"},
		{"excluded IP outside CIDR", func(s *v1alpha1.IPPoolSpec) { s.ExcludeIPs = []string{"10.99.0.5"} }, "spec.excludeIPs", "inside cidr"},
		{"excluded IP not an IP", func(s *v1alpha1.IPPoolSpec) { s.ExcludeIPs = []string{"ten"} }, "spec.excludeIPs", "must be an IP"},
		{"include range outside CIDR", func(s *v1alpha1.IPPoolSpec) {
			s.IncludeRanges = []v1alpha1.IPRange{{Start: "10.16.0.10", End: "10.16.1.10"}}
		}, "spec.includeRanges", "inside cidr"},
		{"include range of mixed families", func(s *v1alpha1.IPPoolSpec) {
			s.IncludeRanges = []v1alpha1.IPRange{{Start: "10.16.0.10", End: "fd00::1"}}
		}, "spec.includeRanges[0]", "same IP family"},
	}
	for i, tc := range poolCases {
		t.Run("IPPool/"+tc.name, func(t *testing.T) {
			p := validPool("bad-" + strings.ReplaceAll(strings.ToLower(tc.name), " ", "-"))
			tc.mutate(&p.Spec)
			_, err := cp.Ecloud.IPPools().Create(ctx, p, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("case %d: want Invalid, got %v", i, err)
			}
			fields := causeFields(err)
			found := false
			for _, f := range fields {
				found = found || f == tc.wantField
			}
			if !found || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("want field %q and message containing %q; got fields %v, error: %v", tc.wantField, tc.wantMsg, fields, err)
			}
		})
	}

	t.Run("IPPool/cidr is immutable", func(t *testing.T) {
		p, err := cp.Ecloud.IPPools().Get(ctx, "pool-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.CIDR, p.Spec.Gateway = "10.18.0.0/24", "10.18.0.1"
		p.Spec.IncludeRanges, p.Spec.ExcludeIPs = nil, nil
		_, err = cp.Ecloud.IPPools().Update(ctx, p, metav1.UpdateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.cidr") {
			t.Fatalf("want spec.cidr immutable error, got %v", err)
		}
	})

	if _, err := cp.Ecloud.IPClaims().Create(ctx, validClaim("10.16.0.10"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("valid claim rejected: %v", err)
	}
	t.Run("IPClaim/second claim for the same IP", func(t *testing.T) {
		c := validClaim("10.16.0.10")
		c.Spec.Owner.PodName = "other-pod"
		_, err := cp.Ecloud.IPClaims().Create(ctx, c, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			t.Fatalf("want AlreadyExists, got %v", err)
		}
	})
	t.Run("IPClaim/IPv6 name", func(t *testing.T) {
		c := validClaim("fd00:10:16::10")
		if c.Name != "fd00-10-16--10" {
			t.Fatalf("ClaimName(fd00:10:16::10) = %q", c.Name)
		}
		if _, err := cp.Ecloud.IPClaims().Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatalf("valid IPv6 claim rejected: %v", err)
		}
	})

	claimCases := []struct {
		name      string
		mutate    func(*v1alpha1.IPClaim)
		wantField string
	}{
		{"name does not match IP", func(c *v1alpha1.IPClaim) { c.Name = "10.16.0.99" }, "metadata.name"},
		{"IP not an address", func(c *v1alpha1.IPClaim) { c.Name, c.Spec.IP = "not-an-ip", "not-an-ip" }, "spec.ip"},
		{"IPv6 not canonical", func(c *v1alpha1.IPClaim) { c.Name, c.Spec.IP = "fd00-0--11", "fd00:0::11" }, "spec.ip"},
		{"ephemeral with policy Never", func(c *v1alpha1.IPClaim) {
			c.Spec.Mode, c.Spec.ReleasePolicy = v1alpha1.ModeEphemeral, v1alpha1.ReleaseNever
		}, "spec.releasePolicy"},
		{"unknown mode", func(c *v1alpha1.IPClaim) { c.Spec.Mode = "Forever" }, "spec.mode"},
		{"unknown phase", func(c *v1alpha1.IPClaim) { c.Status.Phase = "Lost" }, "status.phase"},
		{"missing pod name", func(c *v1alpha1.IPClaim) { c.Spec.Owner.PodName = "" }, "spec.owner.podName"},
	}
	for _, tc := range claimCases {
		t.Run("IPClaim/"+tc.name, func(t *testing.T) {
			c := validClaim("10.16.0.11")
			tc.mutate(c)
			_, err := cp.Ecloud.IPClaims().Create(ctx, c, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Fatalf("error does not name %s: %v (fields %v)", tc.wantField, err, causeFields(err))
			}
		})
	}

	t.Run("IPClaim/ip and pool are immutable", func(t *testing.T) {
		c, err := cp.Ecloud.IPClaims().Get(ctx, "10.16.0.10", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Spec.Pool = "pool-b"
		_, err = cp.Ecloud.IPClaims().Update(ctx, c, metav1.UpdateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.pool") {
			t.Fatalf("want spec.pool immutable error, got %v", err)
		}
	})
}

// TestAPIPrinterColumns checks what `kubectl get ippools,ipclaims` shows: the apiserver's Table
// response, printed with kubectl's own table printer.
func TestAPIPrinterColumns(t *testing.T) {
	cp := harness.Start(t)
	ctx := cp.Ctx
	pool := validPool("pool-a")
	created, err := cp.Ecloud.IPPools().Create(ctx, pool, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = v1alpha1.IPPoolStatus{Total: 190, Allocated: 12, Reserved: 2, Free: 178}
	if _, err := cp.Ecloud.IPPools().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update pool status: %v", err)
	}
	if _, err := cp.Ecloud.IPClaims().Create(ctx, validClaim("10.16.0.10"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		resource   string
		wantHeader []string
		wantRow    []string
	}{
		{"ippools", []string{"NAME", "CIDR", "VLAN", "USED", "FREE", "AGE"}, []string{"pool-a", "10.16.0.0/24", "100", "12", "178"}},
		{"ipclaims", []string{"NAME", "IP", "POOL", "NAMESPACE", "POD", "MODE", "PHASE", "NODE", "AGE"},
			[]string{"10.16.0.10", "10.16.0.10", "pool-a", "shop", "db-0", "Sticky", "Reserved", "dc-a-node-0"}},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			table := &metav1.Table{}
			err := cp.Ecloud.RESTClient().Get().Resource(tc.resource).
				SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
				Do(ctx).Into(table)
			if err != nil {
				t.Fatalf("get %s as Table: %v", tc.resource, err)
			}
			var buf bytes.Buffer
			if err := printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(table, &buf); err != nil {
				t.Fatal(err)
			}
			t.Logf("kubectl get %s:\n%s", tc.resource, buf.String())
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("want header + 1 row, got %q", buf.String())
			}
			if got := strings.Fields(lines[0]); !slices.Equal(got, tc.wantHeader) {
				t.Fatalf("header = %v, want %v", got, tc.wantHeader)
			}
			row := strings.Fields(lines[1])
			if len(row) < len(tc.wantRow) || !slices.Equal(row[:len(tc.wantRow)], tc.wantRow) {
				t.Fatalf("row = %v, want prefix %v", row, tc.wantRow)
			}
		})
	}
}

// TestAPIClaimFieldSelectors checks the selectable fields claims are found by (they carry no
// labels): the owner's namespace and pod name (ipam.OwnerSelector, what the allocator and the
// release controller ask the apiserver), the pool and the node.
func TestAPIClaimFieldSelectors(t *testing.T) {
	cp := harness.Start(t)
	ctx := cp.Ctx
	claim := func(ip, ns, pod, pool, node string) *v1alpha1.IPClaim {
		c := validClaim(ip)
		c.Spec.Owner = v1alpha1.ClaimOwner{Namespace: ns, PodName: pod, Kind: "Pod"}
		c.Spec.Mode, c.Spec.ReleasePolicy = v1alpha1.ModeEphemeral, v1alpha1.ReleaseOnDelete
		c.Spec.Pool, c.Status.Node = pool, node
		return c
	}
	for _, c := range []*v1alpha1.IPClaim{
		claim("10.16.0.10", "shop", "web-1", "pool-a", "n1"),
		claim("10.16.0.11", "shop", "web-2", "pool-a", "n2"),
		claim("10.16.0.12", "shop-2", "web-1", "pool-b", "n1"),
		// A second claim of the same pod identity (as while a sticky pod's old IP is given back).
		claim("10.16.0.13", "shop", "web-1", "pool-b", "n2"),
	} {
		created, err := cp.Ecloud.IPClaims().Create(ctx, c, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(created.Labels) != 0 {
			t.Fatalf("claim %s has labels %v", created.Name, created.Labels)
		}
	}
	cases := []struct {
		selector string
		want     []string
	}{
		{ipam.OwnerSelector("shop", "web-1"), []string{"10.16.0.10", "10.16.0.13"}},
		{ipam.OwnerSelector("shop-2", "web-1"), []string{"10.16.0.12"}},
		{ipam.OwnerSelector("shop", "web-9"), nil},
		{ipam.FieldPool + "=pool-a", []string{"10.16.0.10", "10.16.0.11"}},
		{ipam.FieldNode + "=n1", []string{"10.16.0.10", "10.16.0.12"}},
		{ipam.FieldNode + "=n2," + ipam.FieldPool + "=pool-b", []string{"10.16.0.13"}},
	}
	for _, tc := range cases {
		list, err := cp.Ecloud.IPClaims().List(ctx, metav1.ListOptions{FieldSelector: tc.selector})
		if err != nil {
			t.Fatalf("list --field-selector %s: %v", tc.selector, err)
		}
		var got []string
		for _, c := range list.Items {
			got = append(got, c.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("list --field-selector %s = %v, want %v", tc.selector, got, tc.want)
		}
	}
	// A field that is not selectable is refused, naming it.
	if _, err := cp.Ecloud.IPClaims().List(ctx, metav1.ListOptions{FieldSelector: "spec.mode=Sticky"}); err == nil || !strings.Contains(err.Error(), "spec.mode") {
		t.Fatalf("list --field-selector spec.mode=Sticky: want an error naming the field, got %v", err)
	}
}
