package apiserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/apiserver/authn"
)

// tokenCluster is an API server that issues service account tokens, and
// an authenticator that checks them against its objects, as the real
// server wires them.
type tokenCluster struct {
	*apiservertest.Server
	now           time.Time
	authenticator *authn.Authenticator
}

func startTokenCluster(t *testing.T, cfg apiserver.Config) *tokenCluster {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &tokenCluster{now: time.Now().Truncate(time.Second)}
	var lookup func(ctx context.Context, namespace, resource, name string) (string, error)
	tokens, err := authn.NewServiceAccountTokens(authn.ServiceAccountTokensConfig{
		Key: key,
		Lookup: func(ctx context.Context, namespace, resource, name string) (string, error) {
			return lookup(ctx, namespace, resource, name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServiceAccountTokens = tokens
	cfg.Now = func() time.Time { return c.now }
	c.Server = apiservertest.Start(t, apiservertest.Options{API: cfg})
	lookup = authn.ClientLookup(c.Client.CoreV1().RESTClient())
	if c.authenticator, err = authn.New(authn.Config{ServiceAccounts: tokens}); err != nil {
		t.Fatal(err)
	}
	return c
}

// whoami is the user token authenticates as, or "" when it is refused.
func (c *tokenCluster) whoami(token string) string {
	h := c.authenticator.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := authn.UserFrom(r.Context())
		fmt.Fprint(w, u.Name)
	}))
	req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return ""
	}
	return rec.Body.String()
}

func (c *tokenCluster) create(t *testing.T, objs ...any) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range objs {
		var err error
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = c.Client.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = c.Client.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Node:
			_, err = c.Client.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = c.Client.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("cannot create %T", obj)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func decodeClaims(t *testing.T, token string) *authn.TokenClaims {
	t.Helper()
	c, err := authn.ParseTokenClaims(token)
	if err != nil {
		t.Fatalf("token %q: %v", token, err)
	}
	return c
}

func ptrTo[T any](v T) *T { return &v }

func TestTokenRequestThroughClientGo(t *testing.T) {
	c := startTokenCluster(t, apiserver.Config{})
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "default"}}
	c.create(t, sa)
	stored, err := c.Client.CoreV1().ServiceAccounts("default").Get(context.Background(), "builder", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	tr, err := c.Client.CoreV1().ServiceAccounts("default").CreateToken(context.Background(), "builder", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Name != "builder" || tr.Namespace != "default" || tr.UID != stored.UID || !tr.CreationTimestamp.Time.Equal(c.now) {
		t.Errorf("metadata = %+v, want the service account's name, namespace and uid, created now", tr.ObjectMeta)
	}
	if got := tr.Spec.Audiences; !slices.Equal(got, []string{authn.DefaultIssuer}) {
		t.Errorf("spec.audiences = %v, want the API server's %s", got, authn.DefaultIssuer)
	}
	if tr.Spec.ExpirationSeconds == nil || *tr.Spec.ExpirationSeconds != 3600 {
		t.Errorf("spec.expirationSeconds = %v, want the default 3600", tr.Spec.ExpirationSeconds)
	}
	if want := c.now.Add(time.Hour); !tr.Status.ExpirationTimestamp.Time.Equal(want) {
		t.Errorf("status.expirationTimestamp = %v, want %v", tr.Status.ExpirationTimestamp, want)
	}
	claims := decodeClaims(t, tr.Status.Token)
	k := claims.Kubernetes
	if claims.Issuer != authn.DefaultIssuer || claims.Subject != "system:serviceaccount:default:builder" ||
		!slices.Equal(claims.Audience, []string{authn.DefaultIssuer}) ||
		claims.IssuedAt != c.now.Unix() || claims.NotBefore != c.now.Unix() || claims.Expiry != c.now.Unix()+3600 ||
		claims.ID == "" || k.Namespace != "default" ||
		k.ServiceAccount != (authn.ObjectRef{Name: "builder", UID: string(stored.UID)}) ||
		k.Pod != nil || k.Secret != nil || k.Node != nil || k.WarnAfter != 0 {
		t.Errorf("claims = %+v", claims)
	}
	if got := c.whoami(tr.Status.Token); got != "system:serviceaccount:default:builder" {
		t.Errorf("token authenticates as %q", got)
	}

	// As clients configured for protobuf (kube-controller-manager, the
	// kubelet upstream) send and read it.
	protoConfig := rest.CopyConfig(c.Config)
	protoConfig.ContentType = "application/vnd.kubernetes.protobuf"
	proto, err := kubernetes.NewForConfig(protoConfig)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := proto.CoreV1().ServiceAccounts("default").CreateToken(context.Background(), "builder", &authenticationv1.TokenRequest{}, metav1.CreateOptions{}); err != nil || c.whoami(tr.Status.Token) != "system:serviceaccount:default:builder" {
		t.Errorf("TokenRequest in protobuf: %v", err)
	}

	vault, err := c.Client.CoreV1().ServiceAccounts("default").CreateToken(context.Background(), "builder", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}, ExpirationSeconds: ptrTo(int64(600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if claims := decodeClaims(t, vault.Status.Token); !slices.Equal(claims.Audience, []string{"vault"}) || claims.Expiry-claims.IssuedAt != 600 {
		t.Errorf("a token for vault for 10 minutes: aud %v, lifetime %ds", claims.Audience, claims.Expiry-claims.IssuedAt)
	}
	if got := c.whoami(vault.Status.Token); got != "" {
		t.Errorf("a token for another audience authenticates to the API server as %q", got)
	}
}

// The kubelet asks for 3607 s; upstream issues such pod-bound tokens for a
// year and says in warnafter when the hour ended, while the status keeps
// the hour, so the kubelet still refreshes hourly.
func TestPodBoundTokenOfTheKubeletIsExtended(t *testing.T) {
	c := startTokenCluster(t, apiserver.Config{})
	c.create(t,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "default"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.PodSpec{
			ServiceAccountName: "builder", NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		}})
	ctx := context.Background()
	pod, err := c.Client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.Client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	request := func(audiences ...string) *authenticationv1.TokenRequest {
		tr, err := c.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "builder", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{
				Audiences:         audiences,
				ExpirationSeconds: ptrTo(int64(3607)),
				BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web", UID: pod.UID},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}

	tr := request()
	if want := c.now.Add(3607 * time.Second); !tr.Status.ExpirationTimestamp.Time.Equal(want) {
		t.Errorf("status.expirationTimestamp = %v, want the requested %v", tr.Status.ExpirationTimestamp, want)
	}
	claims := decodeClaims(t, tr.Status.Token)
	k := claims.Kubernetes
	if claims.Expiry != c.now.Unix()+365*24*3600 || k.WarnAfter != c.now.Unix()+3607 {
		t.Errorf("exp %d, warnafter %d; want a year and 3607 s after %d", claims.Expiry, k.WarnAfter, c.now.Unix())
	}
	if k.Pod == nil || *k.Pod != (authn.ObjectRef{Name: "web", UID: string(pod.UID)}) || k.Node == nil || *k.Node != (authn.ObjectRef{Name: "n1", UID: string(node.UID)}) {
		t.Errorf("bound to pod %v on node %v", k.Pod, k.Node)
	}

	other := decodeClaims(t, request("vault").Status.Token)
	if other.Expiry != c.now.Unix()+3607 || other.Kubernetes.WarnAfter != 0 {
		t.Errorf("a token for another audience is extended: exp %d, warnafter %d", other.Expiry-c.now.Unix(), other.Kubernetes.WarnAfter)
	}

	extend := false
	strict := startTokenCluster(t, apiserver.Config{ServiceAccountExtendTokenExpiration: &extend})
	strict.create(t,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}})
	tr, err = strict.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3607)),
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if claims := decodeClaims(t, tr.Status.Token); claims.Expiry != strict.now.Unix()+3607 || claims.Kubernetes.WarnAfter != 0 {
		t.Errorf("with extension off: exp in %d s, warnafter %d", claims.Expiry-strict.now.Unix(), claims.Kubernetes.WarnAfter)
	}
}

func TestTokenRequestRefusals(t *testing.T) {
	c := startTokenCluster(t, apiserver.Config{})
	c.create(t,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "default"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other-sa", Namespace: "default"}, Spec: corev1.PodSpec{
			ServiceAccountName: "runner", Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.PodSpec{
			ServiceAccountName: "builder", Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		}})
	bound := func(kind, apiVersion, name string, uid types.UID) *authenticationv1.BoundObjectReference {
		return &authenticationv1.BoundObjectReference{Kind: kind, APIVersion: apiVersion, Name: name, UID: uid}
	}
	tests := []struct {
		name    string
		sa      string
		req     authenticationv1.TokenRequest
		code    int32
		message string
	}{
		{"shorter than 10 minutes", "builder",
			authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(599))}},
			422, `TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes`},
		{"longer than 2^32 seconds", "builder",
			authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(1<<32 + 1))}},
			422, `TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds`},
		{"no such service account", "ghost", authenticationv1.TokenRequest{},
			404, `serviceaccounts "ghost" not found`},
		{"name in the body differs", "builder",
			authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
			422, `TokenRequest.authentication.k8s.io "builder" is invalid: metadata.name: Invalid value: "other": must match the service account name if specified`},
		{"uid of another service account", "builder",
			authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{UID: "not-the-uid"}},
			409, `Operation cannot be fulfilled on TokenRequest.authentication.k8s.io "builder": the UID in the token request (not-the-uid) does not match the UID of the service account (`},
		{"pod that does not exist", "builder",
			authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: bound("Pod", "v1", "gone", "")}},
			404, `pods "gone" not found`},
		{"pod that was recreated", "builder",
			authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: bound("Pod", "v1", "web", "old-uid")}},
			409, `Operation cannot be fulfilled on Pod "web": the UID in the bound object reference (old-uid) does not match the UID in record. The object might have been deleted and then recreated`},
		{"pod of another service account", "builder",
			authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: bound("Pod", "v1", "other-sa", "")}},
			400, `cannot bind token for serviceaccount "builder" to pod running with different serviceaccount name.`},
		{"a kind tokens cannot be bound to", "builder",
			authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: bound("Deployment", "apps/v1", "web", "")}},
			400, `cannot bind token to object of type apps/v1, Kind=Deployment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Client.CoreV1().ServiceAccounts("default").CreateToken(context.Background(), tt.sa, &tt.req, metav1.CreateOptions{})
			var status apierrors.APIStatus
			if !errors.As(err, &status) {
				t.Fatalf("err = %v, want a Status", err)
			}
			if got := status.Status(); got.Code != tt.code || !strings.HasPrefix(got.Message, tt.message) {
				t.Errorf("got %d %q, want %d %q", got.Code, got.Message, tt.code, tt.message)
			}
		})
	}
}

// Bound tokens die with their objects: deleting the pod, or the secret,
// revokes the token at once, as upstream's authenticator checks.
func TestBoundTokensAreRejectedOnceTheirObjectIsGone(t *testing.T) {
	c := startTokenCluster(t, apiserver.Config{})
	c.create(t,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "default"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "anchor", Namespace: "default"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.PodSpec{
			ServiceAccountName: "builder", Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		}})
	ctx := context.Background()
	issue := func(kind, name string) string {
		tr, err := c.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "builder", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: kind, APIVersion: "v1", Name: name}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	podToken, secretToken := issue("Pod", "web"), issue("Secret", "anchor")
	if claims := decodeClaims(t, secretToken); claims.Kubernetes.Secret == nil || claims.Kubernetes.Secret.Name != "anchor" || claims.Kubernetes.Secret.UID == "" {
		t.Errorf("secret claim = %v", claims.Kubernetes.Secret)
	}
	for name, token := range map[string]string{"pod": podToken, "secret": secretToken} {
		if got := c.whoami(token); got != "system:serviceaccount:default:builder" {
			t.Fatalf("%s-bound token authenticates as %q", name, got)
		}
	}

	if err := c.Client.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if got := c.whoami(podToken); got != "" {
		t.Errorf("token of a deleted pod authenticates as %q", got)
	}
	if got := c.whoami(secretToken); got == "" {
		t.Error("deleting the pod revoked the secret-bound token too")
	}
	if err := c.Client.CoreV1().Secrets("default").Delete(ctx, "anchor", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := c.whoami(secretToken); got != "" {
		t.Errorf("token of a deleted secret authenticates as %q", got)
	}
}

func TestTokenSubresourceIsDiscoverable(t *testing.T) {
	c := startTokenCluster(t, apiserver.Config{})
	list, err := c.Client.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list.APIResources {
		if r.Name == "serviceaccounts/token" {
			if r.Group != "authentication.k8s.io" || r.Version != "v1" || r.Kind != "TokenRequest" || !slices.Equal(r.Verbs, metav1.Verbs{"create"}) {
				t.Errorf("serviceaccounts/token = %+v, want upstream's TokenRequest with verb create", r)
			}
			return
		}
	}
	t.Error("discovery does not list serviceaccounts/token")
}
