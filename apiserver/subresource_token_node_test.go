package apiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
	"github.com/tinykube/tinykube/storage/bolt"
)

// clientAs is a clientset whose every request the API server sees as
// made by u, as if the authenticator in front had said so.
func clientAs(t *testing.T, api *Server, u authn.User) kubernetes.Interface {
	t.Helper()
	h := api.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(authn.WithUser(r.Context(), u)))
	}))
	t.Cleanup(srv.Close)
	c, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A node may only get tokens bound, by name and uid, to a pod scheduled
// to it, as upstream's NodeRestriction admission allows.
func TestNodeTokenRequestsAreRestrictedToItsPods(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "tinykube.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := authn.NewServiceAccountTokens(authn.ServiceAccountTokensConfig{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Config{Storage: store, AdvertiseAddress: netip.MustParseAddr("127.0.0.1"), ServiceAccountTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	admin := clientAs(t, api, authn.User{Name: pki.AdminUser, Groups: []string{pki.AdminGroup, authn.GroupAuthenticated}})
	node := clientAs(t, api, authn.User{Name: pki.NodeUserPrefix + "n1", Groups: []string{pki.NodesGroup, authn.GroupAuthenticated}})

	ctx := context.Background()
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for name, nodeName := range map[string]string{"mine": "n1", "theirs": "n2"} {
		p, err := admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[name] = string(p.UID)
	}
	podRef := func(name, uid string) *authenticationv1.BoundObjectReference {
		return &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: name, UID: types.UID(uid)}
	}
	tests := []struct {
		name    string
		ref     *authenticationv1.BoundObjectReference
		code    int32
		message string
	}{
		{"bound to its own pod", podRef("mine", uids["mine"]), 201, ""},
		{"not bound", nil, 403, `serviceaccounts "default" is forbidden: node requested token not bound to a pod`},
		{"bound without uid", podRef("mine", ""), 403, `serviceaccounts "default" is forbidden: node requested token with a pod binding without a uid`},
		{"bound to another node's pod", podRef("theirs", uids["theirs"]), 403, `serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node`},
		{"bound to a recreated pod", podRef("mine", "old"), 403, `serviceaccounts "default" is forbidden: the UID in the bound object reference (old) does not match the UID in record. The object might have been deleted and then recreated`},
		{"bound to a missing pod", podRef("gone", "x"), 404, `pods "gone" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := node.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
				Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: tt.ref},
			}, metav1.CreateOptions{})
			if tt.code == 201 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var status apierrors.APIStatus
			if !errors.As(err, &status) || status.Status().Code != tt.code || status.Status().Message != tt.message {
				t.Errorf("err = %v, want %d %q", err, tt.code, tt.message)
			}
		})
	}
	if _, err := admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{}); err != nil {
		t.Errorf("an admin's unbound token request: %v", err)
	}
}
