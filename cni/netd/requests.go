package netd

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// maxRequestBytes bounds a request body: a GC request lists every attachment of the node, which
// stays far below this.
const maxRequestBytes = 4 << 20

// decodeRequest reads the body of one request of op: exactly one JSON value of Req (fields it
// does not know are ignored, so a newer plugin's additions do not break an older netd), nothing
// after it. Errors have CodeDecoding and name op.
func decodeRequest[Req any](op string, body io.Reader) (Req, error) {
	var req Req
	dec := json.NewDecoder(io.LimitReader(body, maxRequestBytes+1))
	if err := dec.Decode(&req); err != nil {
		return req, nodeapi.Errorf(nodeapi.CodeDecoding, "decode %s request: %v", op, err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return req, nil
	case err != nil:
		return req, nodeapi.Errorf(nodeapi.CodeDecoding, "decode %s request: after the request object: %v", op, err)
	default:
		return req, nodeapi.Errorf(nodeapi.CodeDecoding, "decode %s request: more than one JSON value (%.40s after the request object)", op, bytes.TrimSpace(extra))
	}
}

// validateRequest checks a decoded request before netd acts on it. Refusals have CodeInvalidEnv
// (what the plugin got from the runtime) and name the field.
func validateRequest(req any) error {
	switch r := req.(type) {
	case nodeapi.AddRequest:
		return joinCoded(append(validateAttachment(r.Attachment), validatePod(r.Pod, true))...)
	case nodeapi.AttachRequest:
		if err := joinCoded(append(validateAttachment(r.Attachment), validatePod(r.Pod, true))...); err != nil {
			return err // the host veth name is derived from the attachment
		}
		return joinCoded(validateAttach(r))
	case nodeapi.DelRequest:
		return joinCoded(append(validateAttachment(r.Attachment), validatePod(r.Pod, false))...)
	case nodeapi.CheckRequest:
		errs := validateAttachment(r.Attachment)
		if _, err := netip.ParsePrefix(r.IP); err != nil {
			errs = append(errs, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "ip %q: not an address with prefix length (the ADD result's IP): %v", r.IP, err))
		}
		return joinCoded(errs...)
	}
	return nil
}

// validateAttachment applies the CNI specification's rules: a container ID of letters, digits,
// '_', '.' and '-' starting with a letter or digit; an interface name of at most 15 bytes, not
// "." or "..", without '/', ':' or whitespace.
func validateAttachment(a nodeapi.Attachment) []*nodeapi.Error {
	var errs []*nodeapi.Error
	switch {
	case a.ContainerID == "":
		errs = append(errs, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "containerID is required (CNI_CONTAINERID)"))
	case !validContainerID(a.ContainerID):
		errs = append(errs, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "containerID %q (CNI_CONTAINERID): only letters, digits, '_', '.' and '-', starting with a letter or digit", a.ContainerID))
	}
	switch {
	case a.IfName == "":
		errs = append(errs, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "ifname is required (CNI_IFNAME)"))
	case len(a.IfName) > 15 || a.IfName == "." || a.IfName == ".." || strings.ContainsFunc(a.IfName, badIfNameRune):
		errs = append(errs, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "ifname %q (CNI_IFNAME): at most 15 bytes, not \".\" or \"..\", without '/', ':', whitespace or control characters", a.IfName))
	}
	return errs
}

func validContainerID(id string) bool {
	for i, c := range id {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

func badIfNameRune(r rune) bool {
	return r == '/' || r == ':' || r <= ' ' || r == 0x7f || r > 0x7e
}

// validatePod checks the pod's namespace and name (from CNI_ARGS); required says both must be
// there (ADD, attach), else they may be empty (a DEL without CNI_ARGS).
func validatePod(p nodeapi.PodRef, required bool) *nodeapi.Error {
	if p.Namespace == "" && p.Name == "" && !required {
		return nil
	}
	if p.Namespace == "" || p.Name == "" {
		return nodeapi.Errorf(nodeapi.CodeInvalidEnv, "pod %q: CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME", p.String())
	}
	if errs := validation.IsDNS1123Label(p.Namespace); len(errs) > 0 {
		return nodeapi.Errorf(nodeapi.CodeInvalidEnv, "pod namespace %q (K8S_POD_NAMESPACE): %s", p.Namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(p.Name); len(errs) > 0 {
		return nodeapi.Errorf(nodeapi.CodeInvalidEnv, "pod name %q (K8S_POD_NAME): %s", p.Name, strings.Join(errs, "; "))
	}
	return nil
}

// validateAttach checks what the plugin reports back from the ADD: the host veth named after
// the attachment (netd puts only that interface on the bridge), an IPv4 address, a VLAN a pool
// can have (the datapath uses the numbers above 4094 for itself) and a pool name.
func validateAttach(r nodeapi.AttachRequest) *nodeapi.Error {
	if want := nodeapi.HostVethName(r.ContainerID, r.IfName); r.HostVeth != want {
		return nodeapi.Errorf(nodeapi.CodeInvalidEnv, "hostVeth %q: the attachment's host veth is %s", r.HostVeth, want)
	}
	ip, err := netip.ParsePrefix(r.IP)
	if err != nil || !ip.Addr().Is4() {
		return nodeapi.Errorf(nodeapi.CodeInvalidEnv, "ip %q: want the IPv4 address with prefix length of the ADD result", r.IP)
	}
	if r.VLAN < 0 || r.VLAN > 4094 {
		return nodeapi.Errorf(nodeapi.CodeInvalidEnv, "vlan %d: want 0 (untagged) to 4094", r.VLAN)
	}
	if errs := validation.IsDNS1123Subdomain(r.Pool); len(errs) > 0 {
		return nodeapi.Errorf(nodeapi.CodeInvalidEnv, "pool %q: %s", r.Pool, strings.Join(errs, "; "))
	}
	return nil
}

// joinCoded joins the refusals (nils skipped) into one *nodeapi.Error with the first one's code,
// or nil.
func joinCoded(errs ...*nodeapi.Error) error {
	var first *nodeapi.Error
	var msgs []string
	for _, e := range errs {
		if e == nil {
			continue
		}
		if first == nil {
			first = e
		}
		msgs = append(msgs, e.Msg)
	}
	if first == nil {
		return nil
	}
	return &nodeapi.Error{Code: first.Code, Msg: strings.Join(msgs, "; ")}
}
