// Package client is the typed client for the network.ecloud.io API (IPPool, IPClaim, IPLocationSlice), built on
// client-go's generic gentype clients, plus shared informers for them.
package client

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/gentype"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Scheme knows the network.ecloud.io types; Codecs and ParameterCodec serve it.
var (
	Scheme         = runtime.NewScheme()
	Codecs         = serializer.NewCodecFactory(Scheme)
	ParameterCodec = runtime.NewParameterCodec(Scheme)
)

func init() {
	utilruntime.Must(v1alpha1.AddToScheme(Scheme))
}

// IPPoolClient reads and writes IPPools.
type IPPoolClient = gentype.ClientWithList[*v1alpha1.IPPool, *v1alpha1.IPPoolList]

// IPClaimClient reads and writes IPClaims.
type IPClaimClient = gentype.ClientWithList[*v1alpha1.IPClaim, *v1alpha1.IPClaimList]

// IPLocationSliceClient reads and writes IPLocationSlices.
type IPLocationSliceClient = gentype.ClientWithList[*v1alpha1.IPLocationSlice, *v1alpha1.IPLocationSliceList]

// Clientset gives typed access to the network.ecloud.io/v1alpha1 resources.
type Clientset struct {
	rest rest.Interface
}

// NewForConfig builds a Clientset for the apiserver that cfg points to.
func NewForConfig(cfg *rest.Config) (*Clientset, error) {
	c := *cfg
	c.GroupVersion = &v1alpha1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = Codecs.WithoutConversion()
	// Custom resources speak JSON only; a config made for built-in types may ask for protobuf.
	c.ContentType = "application/json"
	c.AcceptContentTypes = "application/json"
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(&c)
	if err != nil {
		return nil, fmt.Errorf("network.ecloud.io client for %s: %w", cfg.Host, err)
	}
	return &Clientset{rest: rc}, nil
}

// RESTClient is the underlying REST client, for requests the typed clients do not cover
// (for example the Table form of a list).
func (c *Clientset) RESTClient() rest.Interface { return c.rest }

// IPPools is the client for the cluster-scoped IPPool resource.
func (c *Clientset) IPPools() *IPPoolClient {
	return gentype.NewClientWithList[*v1alpha1.IPPool, *v1alpha1.IPPoolList](
		"ippools", c.rest, ParameterCodec, "",
		func() *v1alpha1.IPPool { return &v1alpha1.IPPool{} },
		func() *v1alpha1.IPPoolList { return &v1alpha1.IPPoolList{} })
}

// IPClaims is the client for the cluster-scoped IPClaim resource.
func (c *Clientset) IPClaims() *IPClaimClient {
	return gentype.NewClientWithList[*v1alpha1.IPClaim, *v1alpha1.IPClaimList](
		"ipclaims", c.rest, ParameterCodec, "",
		func() *v1alpha1.IPClaim { return &v1alpha1.IPClaim{} },
		func() *v1alpha1.IPClaimList { return &v1alpha1.IPClaimList{} })
}

// IPLocationSlices is the client for the cluster-scoped IPLocationSlice resource.
func (c *Clientset) IPLocationSlices() *IPLocationSliceClient {
	return gentype.NewClientWithList[*v1alpha1.IPLocationSlice, *v1alpha1.IPLocationSliceList](
		"iplocationslices", c.rest, ParameterCodec, "",
		func() *v1alpha1.IPLocationSlice { return &v1alpha1.IPLocationSlice{} },
		func() *v1alpha1.IPLocationSliceList { return &v1alpha1.IPLocationSliceList{} })
}

// RESTConfig is the apiserver configuration of kubeconfig, or the in-cluster one when it is empty.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config (pass --kubeconfig outside a cluster): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}
