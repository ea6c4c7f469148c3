package kubelet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tinykube/tinykube/apiserver"
	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/internal/satoken"
	"github.com/tinykube/tinykube/internal/testimage"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/internal/nodetest"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

func TestInitContainersVolumesAndSecurityContext(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	if _, err := n.client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "conf"}, Data: map[string]string{"greeting": "hello from a configmap"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hostDir := t.TempDir()
	script := strings.Join([]string{
		"echo init=$(cat /work/init)",
		"echo cm=$(cat /etc/conf/greeting)",
		"echo secret=$(cat /etc/creds/password)",
		"echo labels=$(cat /etc/podinfo/labels)",
		"echo uid=$(id -u) gid=$(id -g)",
		"touch /rootfs-file 2>/dev/null && echo rootfs=rw || echo rootfs=ro",
		"echo host > /host/out",
	}, "; ")
	b := newPod("vols", testimage.BusyboxRef).command("sh", "-c", script).restartPolicy(corev1.RestartPolicyNever)
	p := b.p
	p.Spec.InitContainers = []corev1.Container{{
		Name: "prepare", Image: testimage.BusyboxRef, ImagePullPolicy: corev1.PullIfNotPresent,
		Command:      []string{"sh", "-c", "echo ready > /work/init"},
		VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}},
	}}
	dirType := corev1.HostPathDirectory
	p.Spec.Volumes = []corev1.Volume{
		{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		}}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &dirType}}},
	}
	c := &p.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "work", MountPath: "/work"},
		{Name: "conf", MountPath: "/etc/conf", ReadOnly: true},
		{Name: "creds", MountPath: "/etc/creds", ReadOnly: true},
		{Name: "podinfo", MountPath: "/etc/podinfo"},
		{Name: "host", MountPath: "/host"},
	}
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(0)), RunAsGroup: ptr(int64(0)), ReadOnlyRootFilesystem: ptr(true)}
	created := n.create(p)

	done := n.waitPod("vols", 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if ics := done.Status.InitContainerStatuses; len(ics) != 1 || ics[0].State.Terminated == nil || ics[0].State.Terminated.ExitCode != 0 {
		t.Errorf("init container status = %+v", ics)
	}
	data, err := os.ReadFile(filepath.Join(n.logDir, "default_vols_"+string(created.UID), "main", "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"init=ready", "cm=hello from a configmap", "secret=s3cret", `labels=app="vols"`,
		"uid=0 gid=0", "rootfs=ro",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("container output lacks %q:\n%s", want, data)
		}
	}
	if out, err := os.ReadFile(filepath.Join(hostDir, "out")); err != nil || string(out) != "host\n" {
		t.Errorf("hostPath file = %q, %v", out, err)
	}
}

func TestRunAsUserCgroupLimitsAndAConfigMapThatAppearsLater(t *testing.T) {
	n := startNode(t, nil)
	b := newPod("user", testimage.BusyboxRef).command("sh", "-c", "echo uid=$(id -u); sleep 3600")
	b.p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(1234)), RunAsGroup: ptr(int64(1234))}
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	b.p.Spec.Volumes = []corev1.Volume{{Name: "late", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "late"}}}}}
	b.p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "late", MountPath: "/late"}}
	b.p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("500m")}
	created := n.create(b.obj())
	n.waitPod("user", 30*time.Second, "waiting in ContainerCreating for its ConfigMap", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ContainerCreating"
	})
	if _, err := n.client.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "late"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := n.waitPod("user", 30*time.Second, "Running once the ConfigMap exists", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	id := strings.TrimPrefix(running.Status.ContainerStatuses[0].ContainerID, "containerd://")
	for file, want := range cgroupLimitFiles(id) {
		if got, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("%s = %q, %v; want %s (limits 64Mi memory, 500m CPU)", file, got, err, want)
		}
	}
	logFile := filepath.Join(n.logDir, "default_user_"+string(created.UID), "main", "0.log")
	if err := waitFor(10*time.Second, func() bool {
		data, _ := os.ReadFile(logFile)
		return strings.Contains(string(data), "uid=1234")
	}); err != nil {
		data, _ := os.ReadFile(logFile)
		t.Errorf("runAsUser 1234: output %q", data)
	}
}

// cgroupLimitFiles are the host's cgroup files holding a container's
// memory limit and CPU quota, with the values for 64Mi and 500m.
func cgroupLimitFiles(id string) map[string]string {
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil { // v1
		return map[string]string{
			"/sys/fs/cgroup/memory/k8s.io/" + id + "/memory.limit_in_bytes": "67108864",
			"/sys/fs/cgroup/cpu/k8s.io/" + id + "/cpu.cfs_quota_us":         "50000",
		}
	}
	return map[string]string{
		"/sys/fs/cgroup/k8s.io/" + id + "/memory.max": "67108864",
		"/sys/fs/cgroup/k8s.io/" + id + "/cpu.max":    "50000 100000",
	}
}

func TestPreStopHookRunsBeforeTheContainerStops(t *testing.T) {
	n := startNode(t, nil)
	hostDir := t.TempDir()
	b := newPod("hook", testimage.BusyboxRef).command("sleep", "3600")
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(3))
	dirType := corev1.HostPathDirectory
	b.p.Spec.Volumes = []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &dirType}}}}
	c := &b.p.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "out", MountPath: "/out"}}
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo stopping > /out/prestop"}}}}
	n.create(b.obj())
	n.waitPod("hook", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := n.client.CoreV1().Pods("default").Delete(context.Background(), "hook", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitGone("hook")
	if out, err := os.ReadFile(filepath.Join(hostDir, "prestop")); err != nil || string(out) != "stopping\n" {
		t.Errorf("preStop hook output = %q, %v", out, err)
	}
}

func TestContainerOverItsMemoryLimitIsOOMKilled(t *testing.T) {
	n := startNode(t, nil)
	// tail keeps a line without newlines in memory until the limit ends it.
	b := newPod("hog", testimage.BusyboxRef).command("sh", "-c", "head -c 200000000 /dev/zero | tail").restartPolicy(corev1.RestartPolicyNever)
	b.p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}
	n.create(b.obj())
	p := n.waitPod("hog", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	st := p.Status.ContainerStatuses[0].State.Terminated
	if st == nil || st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("terminated = %+v, want OOMKilled with exit code 137", st)
	}
}

func TestHostNetworkPodListensOnTheNode(t *testing.T) {
	n := startNode(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := newPod("hostnet", testimage.ServerRef).env("PORT", strconv.Itoa(port))
	b.p.Spec.HostNetwork = true
	n.create(b.obj())
	p := n.waitPod("hostnet", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if p.Status.PodIP != "127.0.0.1" {
		t.Errorf("hostNetwork podIP = %q, want the node's IP", p.Status.PodIP)
	}
	host, _ := os.Hostname()
	var got string
	if err := waitFor(10*time.Second, func() bool {
		got = httpGetNoFail("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		return got != ""
	}); err != nil {
		t.Fatal("hostNetwork pod does not answer on the node's loopback")
	}
	if got != "hello from "+host+"\n" {
		t.Errorf("hostNetwork pod answered %q, want the node's hostname %q", got, host)
	}
	if veths := nodetest.BridgePortsIfAny(n.bridge); len(veths) != 0 {
		t.Errorf("hostNetwork pod got a veth: %v", veths)
	}
}

func httpGetNoFail(url string) string {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := hc.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// shiftedClock is the real clock moved forward by shift, so a test can
// make the kubelet see its tokens age.
type shiftedClock struct {
	clock.RealClock
	shift atomic.Int64
}

func (c *shiftedClock) Now() time.Time                  { return time.Now().Add(time.Duration(c.shift.Load())) }
func (c *shiftedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// A pod gets the kube-api-access volume from the API server's
// ServiceAccount admission; the kubelet fills its token through a
// TokenRequest bound to the pod, and the container finds at
// /var/run/secrets/kubernetes.io/serviceaccount a token that
// authenticates as system:serviceaccount:default:default, the cluster CA
// and its namespace. Once 80% of the token's hour has passed, the kubelet
// replaces it.
func TestServiceAccountTokenVolume(t *testing.T) {
	nodetest.RequireRoot(t, "ip")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
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
	// The API server authenticates and authorizes as `tinykube server`
	// does; the kubelet and the test act as an admin.
	api := apiservertest.Start(t, apiservertest.Options{
		API:   apiserver.Config{ServiceAccountTokens: tokens, ServiceAccountAdmission: true},
		Users: map[string]authn.User{},
	})
	lookup = authn.ClientLookup(api.Client.CoreV1().RESTClient())
	// whoami asks the API server who token is (kubectl auth whoami); ""
	// when it refuses the token.
	whoami := func(token string) string {
		c, err := kubernetes.NewForConfig(api.ConfigFor(token))
		if err != nil {
			t.Fatal(err)
		}
		review, err := c.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if apierrors.IsUnauthorized(err) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return review.Status.UserInfo.Username
	}

	// What the serviceaccount and root CA publisher controllers would
	// have created.
	ctx := context.Background()
	if _, err := api.Client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": "the cluster CA"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk := &shiftedClock{}
	n := startNode(t, api, func(c *kubelet.Config) { c.Clock = clk })

	// The container copies what it sees to a host directory, every
	// second, so the test reads what the container reads.
	hostDir := t.TempDir()
	dirType := corev1.HostPathDirectory
	b := newPod("sa", testimage.BusyboxRef).command("sh", "-c",
		"while true; do cp /var/run/secrets/kubernetes.io/serviceaccount/token /var/run/secrets/kubernetes.io/serviceaccount/namespace /var/run/secrets/kubernetes.io/serviceaccount/ca.crt /vault/vault-token /host/; sleep 1; done")
	b.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	week := int64(7 * 24 * 3600)
	b.p.Spec.Volumes = []corev1.Volume{
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &dirType}}},
		// A token for another audience, for a week: refreshed after a
		// day, not at 80% of its lifetime.
		{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "vault", ExpirationSeconds: &week, Path: "vault-token"},
		}}}}},
	}
	b.p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}, {Name: "vault", MountPath: "/vault", ReadOnly: true}}
	created := n.create(b.obj())
	if len(created.Spec.Volumes) != 3 {
		t.Fatalf("volumes %+v: the API server did not add kube-api-access", created.Spec.Volumes)
	}

	read := func(name string) string {
		data, _ := os.ReadFile(filepath.Join(hostDir, name))
		return string(data)
	}
	if err := waitFor(60*time.Second, func() bool { return read("token") != "" && read("vault-token") != "" }); err != nil {
		t.Fatalf("the container never saw a token; pod status: %+v", n.waitPod("sa", time.Second, "anything", func(*corev1.Pod) bool { return true }).Status)
	}
	first := read("token")
	if got := whoami(first); got != "system:serviceaccount:default:default" {
		t.Errorf("the pod's token authenticates as %q", got)
	}
	if ns, ca := read("namespace"), read("ca.crt"); ns != "default" || ca != "the cluster CA" {
		t.Errorf("namespace %q, ca.crt %q", ns, ca)
	}
	claims, err := satoken.ParseUnverified(first)
	if err != nil {
		t.Fatal(err)
	}
	if k := claims.Kubernetes; k.Pod == nil || k.Pod.UID != string(created.UID) || k.Node == nil || k.Node.Name != nodeName || claims.Expiry-claims.IssuedAt != 365*24*3600 {
		t.Errorf("claims %+v: want bound to the pod on %s, for a year (the kubelet's 3607 s, extended)", claims, nodeName)
	}

	// A pod whose containers all run as one user gets a token only that
	// user can read, as upstream's kubelet writes it.
	user := newPod("sa-user", testimage.BusyboxRef).command("sh", "-c",
		"echo stat=$(stat -c '%a %u' /var/run/secrets/kubernetes.io/serviceaccount/token) bytes=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token | wc -c); sleep 3600")
	user.p.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	user.p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(1234))}
	userPod := n.create(user.obj())
	userLog := filepath.Join(n.logDir, "default_sa-user_"+string(userPod.UID), "main", "0.log")
	var line string
	if err := waitFor(60*time.Second, func() bool {
		data, _ := os.ReadFile(userLog)
		_, line, _ = strings.Cut(string(data), "stat=")
		return line != ""
	}); err != nil {
		t.Fatal("the pod running as 1234 never reported on its token")
	}
	if !strings.HasPrefix(line, "600 1234 bytes=") || strings.HasPrefix(line, "600 1234 bytes=0") {
		t.Errorf("token as seen by user 1234: stat=%s; want mode 600, owner 1234, readable", line)
	}

	vault := read("vault-token")
	if claims, err := satoken.ParseUnverified(vault); err != nil || len(claims.Audience) != 1 || claims.Audience[0] != "vault" || claims.Expiry-claims.IssuedAt != week {
		t.Errorf("vault token claims %+v, %v: want audience vault, for a week", claims, err)
	}
	if got := whoami(vault); got != "" {
		t.Errorf("a token for vault authenticates to the API server as %q", got)
	}

	clk.shift.Store(int64(49 * time.Minute))
	if err := waitFor(60*time.Second, func() bool { t := read("token"); return t != "" && t != first }); err != nil {
		t.Fatal("the kubelet did not replace a token 49 minutes old (of 3607 s)")
	}
	if got := whoami(read("token")); got != "system:serviceaccount:default:default" {
		t.Errorf("the refreshed token authenticates as %q", got)
	}
	// The same sync that replaced the hour's token kept the week's.
	if read("vault-token") != vault {
		t.Error("the kubelet replaced a week's token after 49 minutes")
	}

	clk.shift.Store(int64(25 * time.Hour))
	if err := waitFor(60*time.Second, func() bool { t := read("vault-token"); return t != "" && t != vault }); err != nil {
		t.Fatal("the kubelet did not replace a week's token after a day")
	}
}
