package config

import "k8s.io/apimachinery/pkg/runtime"

// DeepCopyInto copies the receiver into out.
func (in *DualDatacenterArgs) DeepCopyInto(out *DualDatacenterArgs) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	if in.Datacenters != nil {
		out.Datacenters = append([]string(nil), in.Datacenters...)
	}
}

// DeepCopy returns a copy of the receiver.
func (in *DualDatacenterArgs) DeepCopy() *DualDatacenterArgs {
	if in == nil {
		return nil
	}
	out := new(DualDatacenterArgs)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *DualDatacenterArgs) DeepCopyObject() runtime.Object { return in.DeepCopy() }
