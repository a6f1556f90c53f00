package locrelay

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// reviewer answers TokenReviews and SubjectAccessReviews as an apiserver would for a few tokens.
type reviewer struct {
	users   map[string]string // token → user, for the relay's audience
	allowed map[string]bool   // user → may watch iplocationslices
	fail    bool
	calls   int
	sawSAR  *authorizationv1.SubjectAccessReview
}

func (r *reviewer) clientset() *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		r.calls++
		if r.fail {
			return true, nil, errors.New("connection refused")
		}
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		user, ok := r.users[tr.Spec.Token]
		if !ok || len(tr.Spec.Audiences) != 1 || tr.Spec.Audiences[0] != DefaultAudience {
			tr.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
			return true, tr, nil
		}
		tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: tr.Spec.Audiences,
			User: authenticationv1.UserInfo{Username: user, Groups: []string{"system:serviceaccounts"}}}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		r.sawSAR = sar
		sar.Status.Allowed = r.allowed[sar.Spec.User]
		return true, sar, nil
	})
	return cs
}

func TestReviewAuthorizer(t *testing.T) {
	const netd, other = "system:serviceaccount:kube-system:ecloud-netd", "system:serviceaccount:default:app"
	for _, tc := range []struct {
		name       string
		token      string
		fail       bool
		wantCode   int
		wantReason string
		wantCalls  int // review calls after asking twice (the second may be cached)
	}{
		{"no token", "", false, http.StatusUnauthorized, "no bearer token", 0},
		{"a token the apiserver does not take for the audience", "bogus", false, http.StatusUnauthorized, "invalid bearer token", 1},
		{"a user without watch on the slices", "app-token", false, http.StatusForbidden, other + " may not watch iplocationslices.network.ecloud.io", 1},
		{"netd", "netd-token", false, http.StatusOK, "", 1},
		{"the apiserver does not answer: not cached", "netd-token", true, http.StatusServiceUnavailable, "token review: connection refused", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &reviewer{users: map[string]string{"netd-token": netd, "app-token": other}, allowed: map[string]bool{netd: true}, fail: tc.fail}
			a := NewReviewAuthorizer(r.clientset(), "")
			for i := 0; i < 2; i++ {
				user, code, reason := a.Authorize(context.Background(), tc.token)
				if code != tc.wantCode || !strings.Contains(reason, tc.wantReason) {
					t.Fatalf("Authorize = %q, %d, %q; want %d, %q", user, code, reason, tc.wantCode, tc.wantReason)
				}
			}
			if r.calls != tc.wantCalls {
				t.Errorf("%d token reviews for two requests, want %d", r.calls, tc.wantCalls)
			}
			if tc.wantCode == http.StatusOK {
				ra := r.sawSAR.Spec.ResourceAttributes
				if r.sawSAR.Spec.User != netd || ra.Verb != "watch" || ra.Group != "network.ecloud.io" || ra.Resource != "iplocationslices" {
					t.Errorf("access review asked %+v for %q", ra, r.sawSAR.Spec.User)
				}
			}
		})
	}
	t.Run("a refusal is asked about again after its time", func(t *testing.T) {
		r := &reviewer{users: map[string]string{"app-token": other}, allowed: map[string]bool{}}
		a := NewReviewAuthorizer(r.clientset(), "")
		now := time.Now()
		a.now = func() time.Time { return now }
		a.Authorize(context.Background(), "app-token")
		r.allowed[other] = true
		if _, code, _ := a.Authorize(context.Background(), "app-token"); code != http.StatusForbidden {
			t.Fatalf("code %d within the refusal's cache time, want 403", code)
		}
		now = now.Add(6 * time.Second)
		if _, code, _ := a.Authorize(context.Background(), "app-token"); code != http.StatusOK {
			t.Fatalf("code %d after the refusal expired and the user was granted, want 200", code)
		}
	})
}
