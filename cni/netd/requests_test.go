package netd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

const fuzzCID = "3f1c0ffee2b4"

var (
	fuzzAttach = nodeapi.AttachRequest{Attachment: nodeapi.Attachment{ContainerID: fuzzCID, IfName: "eth0"},
		Pod: nodeapi.PodRef{Namespace: "shop", Name: "web-0", UID: "u1"}, HostVeth: nodeapi.HostVethName(fuzzCID, "eth0"),
		IP: "10.16.1.7/24", VLAN: 100, Pool: "pool-a"}
	fuzzAdd = nodeapi.AddRequest{Attachment: fuzzAttach.Attachment, Pod: fuzzAttach.Pod}
)

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidateRequest(t *testing.T) {
	attach := func(mut func(*nodeapi.AttachRequest)) nodeapi.AttachRequest {
		r := fuzzAttach
		mut(&r)
		return r
	}
	tests := []struct {
		name   string
		req    any
		naming string // "" = valid; else the refusal must have CodeInvalidEnv and contain it
	}{
		{"add", fuzzAdd, ""},
		{"attach", fuzzAttach, ""},
		{"del without pod", nodeapi.DelRequest{Attachment: fuzzAttach.Attachment}, ""},
		{"check", nodeapi.CheckRequest{Attachment: fuzzAttach.Attachment, IP: "10.16.1.7/24"}, ""},
		{"gc with odd entries", nodeapi.GCRequest{Valid: []nodeapi.Attachment{{}}}, ""},
		{"add without container ID", nodeapi.AddRequest{Attachment: nodeapi.Attachment{IfName: "eth0"}, Pod: fuzzAdd.Pod}, "containerID is required"},
		{"container ID with a slash", nodeapi.AddRequest{Attachment: nodeapi.Attachment{ContainerID: "../x", IfName: "eth0"}, Pod: fuzzAdd.Pod}, `containerID "../x"`},
		{"ifname too long", nodeapi.AddRequest{Attachment: nodeapi.Attachment{ContainerID: "c", IfName: "eth0123456789012"}, Pod: fuzzAdd.Pod}, "ifname"},
		{"ifname with a colon", nodeapi.DelRequest{Attachment: nodeapi.Attachment{ContainerID: "c", IfName: "eth0:1"}}, `ifname "eth0:1"`},
		{"ifname ..", nodeapi.DelRequest{Attachment: nodeapi.Attachment{ContainerID: "c", IfName: ".."}}, `ifname ".."`},
		{"both missing: both named", nodeapi.DelRequest{}, "containerID is required (CNI_CONTAINERID); ifname is required"},
		{"add without pod name", nodeapi.AddRequest{Attachment: fuzzAdd.Attachment, Pod: nodeapi.PodRef{Namespace: "shop"}}, "K8S_POD_NAME"},
		{"pod namespace not a label", nodeapi.AddRequest{Attachment: fuzzAdd.Attachment, Pod: nodeapi.PodRef{Namespace: "Shop", Name: "a"}}, "pod namespace"},
		{"del with a half pod", nodeapi.DelRequest{Attachment: fuzzAdd.Attachment, Pod: nodeapi.PodRef{Name: "a"}}, "K8S_POD_NAMESPACE"},
		{"attach of another interface", attach(func(r *nodeapi.AttachRequest) { r.HostVeth = "eth1" }), `hostVeth "eth1"`},
		{"attach without IP", attach(func(r *nodeapi.AttachRequest) { r.IP = "" }), `ip ""`},
		{"attach of an IPv6 address", attach(func(r *nodeapi.AttachRequest) { r.IP = "fd00::7/64" }), `ip "fd00::7/64"`},
		{"attach on the host's network number", attach(func(r *nodeapi.AttachRequest) { r.VLAN = gatewayNet }), "vlan 4096"},
		{"attach on a negative VLAN", attach(func(r *nodeapi.AttachRequest) { r.VLAN = -1 }), "vlan -1"},
		{"attach without pool", attach(func(r *nodeapi.AttachRequest) { r.Pool = "" }), `pool ""`},
		{"check without IP", nodeapi.CheckRequest{Attachment: fuzzAttach.Attachment, IP: "x"}, `ip "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateRequest(tc.req)
			if tc.naming == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if nodeapi.CodeOf(err) != nodeapi.CodeInvalidEnv || !strings.Contains(err.Error(), tc.naming) {
				t.Errorf("error %v, want code %d naming %q", err, nodeapi.CodeInvalidEnv, tc.naming)
			}
		})
	}
}

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct{ body, naming string }{
		{mustJSON(t, fuzzAdd) + "\n", ""},
		{`{"containerID":"c","ifname":"eth0","future":1}`, ""},
		{``, "decode add request: EOF"},
		{`{"containerID":"c"} {"containerID":"d"}`, "more than one JSON value"},
		{`{"containerID":"c"}x`, "after the request object"},
		{`{"containerID":7}`, "decode add request"},
		{`[1]`, "decode add request"},
	} {
		_, err := decodeRequest[nodeapi.AddRequest]("add", strings.NewReader(tc.body))
		if tc.naming == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.body, err)
			}
			continue
		}
		if nodeapi.CodeOf(err) != nodeapi.CodeDecoding || !strings.Contains(err.Error(), tc.naming) {
			t.Errorf("%q: error %v, want code %d naming %q", tc.body, err, nodeapi.CodeDecoding, tc.naming)
		}
	}
}

// fuzzOps are the socket's operations with a request body, each served by serve as netd serves
// it, with fn standing in for the operation: it records what it was given.
var fuzzOps = []string{"add", "attach", "del", "check", "gc"}

// serveOne runs one request through serve for op and returns the HTTP status, the body and the
// request fn received (nil when fn did not run).
func serveOne(t *testing.T, d *Daemon, op string, body []byte) (int, []byte, any) {
	var got any
	record := func(_ context.Context, req any) { got = req }
	var h http.HandlerFunc
	switch op {
	case "add":
		h = serve(d, op, func(ctx context.Context, r nodeapi.AddRequest) (empty, error) { record(ctx, r); return empty{}, nil })
	case "attach":
		h = serve(d, op, func(ctx context.Context, r nodeapi.AttachRequest) (empty, error) { record(ctx, r); return empty{}, nil })
	case "del":
		h = serve(d, op, func(ctx context.Context, r nodeapi.DelRequest) (empty, error) { record(ctx, r); return empty{}, nil })
	case "check":
		h = serve(d, op, func(ctx context.Context, r nodeapi.CheckRequest) (empty, error) { record(ctx, r); return empty{}, nil })
	case "gc":
		h = serve(d, op, func(ctx context.Context, r nodeapi.GCRequest) (empty, error) { record(ctx, r); return empty{}, nil })
	}
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodPost, "/v1/"+op, bytes.NewReader(body)))
	return rec.Code, rec.Body.Bytes(), got
}

// FuzzServeRequest drives netd's socket request handling (serve: decodeRequest, validateRequest)
// with any body for any operation. Properties: no panic; the operation runs only on a request
// that satisfies the invariants it relies on, and that request survives a JSON round trip through
// serve unchanged; everything else is refused with a CNI error of code 6 (undecodable) or 4
// (invalid) whose message names the operation or the field.
func FuzzServeRequest(f *testing.F) {
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
	seeds := map[string][]string{
		"add":    {mustJSON(f, fuzzAdd), `{"containerID":"c","ifname":"eth0","pod":{"namespace":"a","name":"b"}}x`, `{}`},
		"attach": {mustJSON(f, fuzzAttach), `{"containerID":"c","ifname":"eth0","pod":{"namespace":"a","name":"b"},"hostVeth":"eth0","ip":"10.0.0.1/8","vlan":4096}`},
		"del":    {mustJSON(f, nodeapi.DelRequest{Attachment: fuzzAdd.Attachment}), `{"containerID":"c","ifname":"/"}`},
		"check":  {mustJSON(f, nodeapi.CheckRequest{Attachment: fuzzAdd.Attachment, IP: "10.16.1.7/24"}), `{"containerID":"c","ifname":"eth0","ip":"::"}`},
		"gc":     {mustJSON(f, nodeapi.GCRequest{Valid: []nodeapi.Attachment{fuzzAdd.Attachment}}), `{"valid":null}`, `null`},
	}
	for i, op := range fuzzOps {
		for _, s := range seeds[op] {
			f.Add(uint8(i), []byte(s))
		}
	}
	d := &Daemon{}
	d.ready.Store(true)
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		op := fuzzOps[int(opIndex)%len(fuzzOps)]
		code, resp, got := serveOne(t, d, op, body)
		if code != http.StatusOK {
			if got != nil {
				t.Fatalf("%s: status %d, yet the operation ran with %+v", op, code, got)
			}
			var e nodeapi.Error
			if err := json.Unmarshal(resp, &e); err != nil {
				t.Fatalf("%s: status %d with a body that is no CNI error: %q", op, code, resp)
			}
			switch {
			case e.Code == nodeapi.CodeDecoding && strings.HasPrefix(e.Msg, "decode "+op+" request: "):
			case e.Code == nodeapi.CodeInvalidEnv && strings.ContainsAny(e.Msg, `"(`) &&
				containsAny(e.Msg, "containerID", "ifname", "pod", "K8S_POD", "hostVeth", "ip ", "vlan", "pool"):
			default:
				t.Fatalf("%s: refusal %+v names neither the operation nor a field", op, e)
			}
			return
		}
		if got == nil {
			t.Fatalf("%s: status 200 without running the operation", op)
		}
		checkInvariants(t, got)
		// The accepted request, encoded again, is accepted again as the same request.
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		code2, resp2, got2 := serveOne(t, d, op, again)
		if code2 != http.StatusOK || !reflect.DeepEqual(got, got2) {
			t.Fatalf("%s: %+v did not round-trip: status %d %s, got %+v", op, got, code2, resp2, got2)
		}
	})
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// checkInvariants asserts what the operations rely on in an accepted request.
func checkInvariants(t *testing.T, req any) {
	t.Helper()
	attachment := func(a nodeapi.Attachment) {
		if a.ContainerID == "" || a.IfName == "" || len(a.IfName) > 15 || strings.ContainsAny(a.IfName, "/: \t\n\x00") ||
			strings.ContainsAny(a.ContainerID, "/ ") {
			t.Fatalf("accepted attachment %+v", a)
		}
	}
	switch r := req.(type) {
	case nodeapi.AddRequest:
		attachment(r.Attachment)
		if r.Pod.Namespace == "" || r.Pod.Name == "" {
			t.Fatalf("accepted add without pod: %+v", r)
		}
	case nodeapi.AttachRequest:
		attachment(r.Attachment)
		ip, err := netip.ParsePrefix(r.IP)
		if err != nil || !ip.Addr().Is4() || r.VLAN < 0 || r.VLAN >= gatewayNet || r.Pool == "" ||
			r.HostVeth != nodeapi.HostVethName(r.ContainerID, r.IfName) || r.Pod.Name == "" {
			t.Fatalf("accepted attach %+v", r)
		}
		if _, err := nodeapi.MACForIP(ip.Addr()); err != nil {
			t.Fatalf("accepted attach %+v: %v", r, err)
		}
	case nodeapi.DelRequest:
		attachment(r.Attachment)
		if (r.Pod.Namespace == "") != (r.Pod.Name == "") {
			t.Fatalf("accepted del with half a pod: %+v", r)
		}
	case nodeapi.CheckRequest:
		attachment(r.Attachment)
		if _, err := netip.ParsePrefix(r.IP); err != nil {
			t.Fatalf("accepted check %+v: %v", r, err)
		}
	}
}
