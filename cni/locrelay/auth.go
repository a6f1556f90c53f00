package locrelay

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// DefaultAudience is the audience of the tokens followers present: a projected ServiceAccount
// token for it is refused by the apiserver, so one seen on the wire is no use there.
const DefaultAudience = "ecloud-location-relay"

// Authorizer decides whether the holder of a bearer token may follow the relay: http.StatusOK
// with the user's name, or the status to refuse with and why.
type Authorizer interface {
	Authorize(ctx context.Context, token string) (user string, code int, reason string)
}

// ReviewAuthorizer asks the apiserver: a TokenReview for the relay's audience authenticates
// the token, a SubjectAccessReview checks that its user may watch IPLocationSlices (what a
// follower of the apiserver itself would need). Answers are cached per token.
type ReviewAuthorizer struct {
	kube     kubernetes.Interface
	audience string
	allowTTL time.Duration
	denyTTL  time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]verdict
}

type verdict struct {
	user    string
	code    int
	reason  string
	expires time.Time
}

var _ Authorizer = (*ReviewAuthorizer)(nil)

// NewReviewAuthorizer reviews tokens for audience (DefaultAudience if empty) through kube;
// allowed tokens are trusted for a minute, refused ones are asked about again after 5 s.
func NewReviewAuthorizer(kube kubernetes.Interface, audience string) *ReviewAuthorizer {
	if audience == "" {
		audience = DefaultAudience
	}
	return &ReviewAuthorizer{kube: kube, audience: audience, allowTTL: time.Minute, denyTTL: 5 * time.Second,
		now: time.Now, cache: map[[32]byte]verdict{}}
}

// Authorize implements Authorizer.
func (a *ReviewAuthorizer) Authorize(ctx context.Context, token string) (string, int, string) {
	if token == "" {
		return "", http.StatusUnauthorized, "no bearer token"
	}
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	v, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(v.expires) {
		return v.user, v.code, v.reason
	}
	v, cacheable := a.review(ctx, token)
	if cacheable {
		ttl := a.denyTTL
		if v.code == http.StatusOK {
			ttl = a.allowTTL
		}
		v.expires = now.Add(ttl)
		a.mu.Lock()
		for k, old := range a.cache {
			if !now.Before(old.expires) {
				delete(a.cache, k)
			}
		}
		a.cache[key] = v
		a.mu.Unlock()
	}
	authorizations.WithLabelValues(strings.ToLower(http.StatusText(v.code))).Inc()
	return v.user, v.code, v.reason
}

func (a *ReviewAuthorizer) review(ctx context.Context, token string) (verdict, bool) {
	tr, err := a.kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{a.audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return verdict{code: http.StatusServiceUnavailable, reason: fmt.Sprintf("token review: %v", err)}, false
	}
	if !tr.Status.Authenticated {
		why := tr.Status.Error
		if why == "" {
			why = "not authenticated"
		}
		return verdict{code: http.StatusUnauthorized, reason: fmt.Sprintf("token for audience %q: %s", a.audience, why)}, true
	}
	u := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := a.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: "watch", Group: v1alpha1.SchemeGroupVersion.Group, Version: v1alpha1.SchemeGroupVersion.Version, Resource: "iplocationslices",
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return verdict{user: u.Username, code: http.StatusServiceUnavailable, reason: fmt.Sprintf("access review of %s: %v", u.Username, err)}, false
	}
	if !sar.Status.Allowed {
		return verdict{user: u.Username, code: http.StatusForbidden,
			reason: fmt.Sprintf("%s may not watch iplocationslices.%s", u.Username, v1alpha1.SchemeGroupVersion.Group)}, true
	}
	return verdict{user: u.Username, code: http.StatusOK}, true
}

// bearer is the request's bearer token.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// refuse answers with a Kubernetes-style Status body, so clients print the reason.
func refuse(w http.ResponseWriter, reason string, code int, msg string) {
	refusals.WithLabelValues(reason).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Message: msg, Reason: metav1.StatusReason(http.StatusText(code)),
	})
}
