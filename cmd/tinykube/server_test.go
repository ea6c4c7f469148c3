package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// execMainEnv makes the test binary behave as the tinykube binary, so the
// tests run the real command in a child process without a separate build.
const execMainEnv = "TINYKUBE_TEST_EXEC_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(execMainEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// serverProcess is a `tinykube server` child process.
type serverProcess struct {
	cmd        *exec.Cmd
	url        string
	kubeconfig string
	// readyAfter is the time from exec to the ready line.
	readyAfter time.Duration
	exited     chan error
	stderr     *strings.Builder
}

// startServer runs `tinykube server` on 127.0.0.1 with a free port and
// dataDir, and waits for its ready line.
func startServer(t testing.TB, dataDir string) *serverProcess {
	t.Helper()
	kubeconfig := filepath.Join(dataDir, "kubeconfig.yaml")
	cmd := exec.Command(os.Args[0],
		"server",
		"--data-dir", dataDir,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--https-listen-port", "0",
		"--write-kubeconfig", kubeconfig,
		"--disable-agent",
	)
	cmd.Env = append(os.Environ(), execMainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, kubeconfig: kubeconfig, exited: make(chan error, 1), stderr: &strings.Builder{}}
	cmd.Stderr = p.stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A test that failed half-way still ends its server.
		_ = cmd.Process.Kill()
		<-p.exited
	})

	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.exited <- cmd.Wait()
		close(p.exited)
	}()

	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	var ready []string
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("server exited before it was ready; stdout %q; stderr:\n%s", ready, p.stderr)
			}
			ready = append(ready, line)
			if len(ready) > 1 {
				t.Fatalf("server printed more than one line on stdout: %q", ready)
			}
			const prefix = "tinykube: API server ready at "
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("unexpected first line %q", line)
			}
			p.readyAfter = time.Since(start)
			p.url, _, _ = strings.Cut(strings.TrimPrefix(line, prefix), " ")
			if !strings.Contains(line, "(kubeconfig "+kubeconfig+")") {
				t.Errorf("ready line %q does not name the kubeconfig", line)
			}
			// Keep draining stdout so the child never blocks on it.
			go func() {
				for l := range lines {
					t.Errorf("server printed another line on stdout: %q", l)
				}
			}()
			return p
		case <-deadline.C:
			t.Fatalf("server not ready after 20s; stderr:\n%s", p.stderr)
		}
	}
}

// stop sends SIGTERM and returns the exit error (nil for exit status 0).
func (p *serverProcess) stop(t testing.TB) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case err := <-p.exited:
		t.Logf("exited %v after SIGTERM", time.Since(start))
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("server did not exit within 15s of SIGTERM; stderr:\n%s", p.stderr)
	}
	return nil
}

// restConfig is the client configuration from the written kubeconfig, as
// kubectl would load it.
func (p *serverProcess) restConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.Host, "https://127.0.0.1:") || cfg.Host != p.url {
		t.Fatalf("kubeconfig server %q, ready line %q", cfg.Host, p.url)
	}
	return cfg
}

// clientset is a client-go clientset from the written kubeconfig, with the
// rate limits lifted that would otherwise make benchmarks measure the
// client.
func (p *serverProcess) clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// anonymousClient trusts the cluster CA but presents no credential.
func anonymousClient(t *testing.T, cfg *rest.Config) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.CAData) {
		t.Fatal("kubeconfig has no CA data")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
}

func caFingerprint(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	block, _ := pem.Decode(cfg.CAData)
	if block == nil {
		t.Fatal("kubeconfig CA data is not PEM")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// servingCert is the certificate the server at cfg.Host presents.
func servingCert(t *testing.T, cfg *rest.Config) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(cfg.Host, "https://"), &tls.Config{InsecureSkipVerify: true}) // only to read it
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func getStatus(t *testing.T, hc *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestServerSecurityAndRestart(t *testing.T) {
	dataDir := t.TempDir()
	p := startServer(t, dataDir)
	cfg := p.restConfig(t)
	firstCert := servingCert(t, cfg)

	t.Run("kubeconfig is private", func(t *testing.T) {
		fi, err := os.Stat(p.kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("kubeconfig mode %v, want 0600", fi.Mode().Perm())
		}
	})

	t.Run("serving certificate names the in-cluster addresses", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(cfg.CAData)
		addr := strings.TrimPrefix(p.url, "https://")
		for _, name := range []string{"localhost", "127.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.43.0.1"} {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: name})
			if err != nil {
				t.Errorf("TLS as %s: %v", name, err)
				continue
			}
			conn.Close()
		}
	})

	t.Run("no credential gets 401 Status", func(t *testing.T) {
		code, body := getStatus(t, anonymousClient(t, cfg), p.url+"/api")
		if code != http.StatusUnauthorized {
			t.Fatalf("GET /api without credential: %d %s", code, body)
		}
		var st metav1.Status
		if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" || st.Reason != metav1.StatusReasonUnauthorized || st.Code != 401 {
			t.Errorf("401 body %s is not upstream's Unauthorized Status (%v)", body, err)
		}
	})

	t.Run("version is open", func(t *testing.T) {
		code, body := getStatus(t, anonymousClient(t, cfg), p.url+"/version")
		if code != http.StatusOK {
			t.Fatalf("GET /version without credential: %d %s", code, body)
		}
	})

	t.Run("plain HTTP is refused", func(t *testing.T) {
		resp, err := http.Get("http://" + strings.TrimPrefix(p.url, "https://") + "/version")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("the API answered over plain HTTP")
			}
		}
	})

	t.Run("clientset from kubeconfig", func(t *testing.T) {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		v, err := cs.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion == "" {
			t.Error("empty server version")
		}
		checkBootstrapped(t, cs, p)
		// Written now, read after the restart below.
		_, err = cs.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "survives-restart"},
			Data:       map[string]string{"k": "v"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bearer token from the token file", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(dataDir, "server", "token.csv"))
		if err != nil {
			t.Fatal(err)
		}
		token, _, _ := strings.Cut(string(data), ",")
		tc := rest.AnonymousClientConfig(cfg)
		tc.BearerToken = token
		cs, err := kubernetes.NewForConfig(tc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.Discovery().ServerVersion(); err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodGet, p.url+"/api", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := anonymousClient(t, cfg).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			t.Error("a valid bearer token got 401")
		}
	})

	t.Run("service account token", func(t *testing.T) {
		// Signed as the server signs them, with the data dir's key.
		data, err := os.ReadFile(filepath.Join(dataDir, "server", "tls", "service-account.key"))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatal("service account key is not PEM")
		}
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		sa, err := authn.NewServiceAccountTokens(authn.ServiceAccountTokensConfig{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		// The default ServiceAccount, once its controller has made it.
		admin, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		w, err := admin.CoreV1().ServiceAccounts("default").Watch(context.Background(), metav1.ListOptions{FieldSelector: "metadata.name=default"})
		if err != nil {
			t.Fatal(err)
		}
		def := waitFor(t, w, "default ServiceAccount", func(*corev1.ServiceAccount) bool { return true })
		listWith := func(claims authn.ServiceAccountClaims) error {
			token, _, err := sa.Issue(claims)
			if err != nil {
				t.Fatal(err)
			}
			tc := rest.AnonymousClientConfig(cfg)
			tc.BearerToken = token
			cs, err := kubernetes.NewForConfig(tc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cs.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
			return err
		}
		defaultSA := authn.ServiceAccountClaims{Namespace: "default", ServiceAccount: authn.ObjectRef{Name: "default", UID: string(def.UID)}}
		// Authenticated, and allowed nothing until RBAC grants it, as upstream.
		err = listWith(defaultSA)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "system:serviceaccount:default:default" cannot list resource "configmaps"`) {
			t.Errorf("token of the default ServiceAccount without a role: %v, want Forbidden for that user", err)
		}
		if _, err := admin.RbacV1().RoleBindings("default").Create(context.Background(), &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "default-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "default"}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return listWith(defaultSA) == nil, nil
		})
		if err != nil {
			t.Errorf("token of the default ServiceAccount bound to view: %v", listWith(defaultSA))
		}
		// A TokenRequest bound to a Node (cluster-scoped): valid while the
		// Node exists.
		node, err := admin.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "token-node"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := admin.CoreV1().ServiceAccounts("default").CreateToken(context.Background(), "default", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: node.Name, UID: node.UID}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodeBound := rest.AnonymousClientConfig(cfg)
		nodeBound.BearerToken = tr.Status.Token
		nbClient, err := kubernetes.NewForConfig(nodeBound)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nbClient.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{}); err != nil {
			t.Errorf("a Node-bound token while its Node exists: %v", err)
		}
		if err := listWith(authn.ServiceAccountClaims{Namespace: "default", ServiceAccount: authn.ObjectRef{Name: "ghost", UID: "x"}}); !apierrors.IsUnauthorized(err) {
			t.Errorf("token of a ServiceAccount that does not exist: %v, want Unauthorized", err)
		}
	})

	if err := p.stop(t); err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0; stderr:\n%s", err, p.stderr)
	}

	// Same data dir: same CA, so the kubeconfig handed out before still
	// works. How fast it starts is BenchmarkServerStartToReady's to say:
	// timings in tests only flake on a loaded machine.
	again := startServer(t, dataDir)
	t.Logf("ready %v after start on an existing data dir (first start: %v)", again.readyAfter, p.readyAfter)
	cfg2 := again.restConfig(t)
	if caFingerprint(t, cfg) != caFingerprint(t, cfg2) {
		t.Error("CA changed across a restart")
	}
	// A new serving certificate only when the host's addresses changed
	// in between (other tests add and remove links on this host).
	if first, second := firstCert, servingCert(t, cfg2); first.SerialNumber.Cmp(second.SerialNumber) != 0 &&
		fmt.Sprint(first.IPAddresses, first.DNSNames) == fmt.Sprint(second.IPAddresses, second.DNSNames) {
		t.Error("serving certificate reissued on a restart with the same addresses")
	}
	old := rest.CopyConfig(cfg)
	old.Host = again.url // new port; the credentials are the old ones
	cs, err := kubernetes.NewForConfig(old)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), "survives-restart", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("old kubeconfig, after restart: %v", err)
	}
	if cm.Data["k"] != "v" {
		t.Errorf("ConfigMap after restart: %v", cm.Data)
	}
	checkBootstrapped(t, cs, again)
	if err := again.stop(t); err != nil {
		t.Fatalf("SIGTERM after restart: exit %v, want 0", err)
	}
}

// checkBootstrapped checks what every fresh cluster has: the system
// namespaces and the `kubernetes` Service pointing at the API server.
func checkBootstrapped(t *testing.T, cs kubernetes.Interface, p *serverProcess) {
	t.Helper()
	ctx := context.Background()
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, ns := range nss.Items {
		have[ns.Name] = true
	}
	for _, want := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if !have[want] {
			t.Errorf("namespace %s missing; have %v", want, have)
		}
	}
	svc, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.43.0.1" {
		t.Errorf("kubernetes Service ClusterIP %s, want 10.43.0.1", svc.Spec.ClusterIP)
	}
	ep, err := cs.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(p.url, "https://127.0.0.1"), ":")
	if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || ep.Subsets[0].Addresses[0].IP != "127.0.0.1" ||
		len(ep.Subsets[0].Ports) != 1 || strconv.Itoa(int(ep.Subsets[0].Ports[0].Port)) != port {
		t.Errorf("kubernetes Endpoints %+v, want 127.0.0.1:%s", ep.Subsets, port)
	}
}

func TestServerRejectsBadFlags(t *testing.T) {
	for name, args := range map[string][]string{
		"service CIDR not a prefix":    {"--service-cidr", "10.43.0.0"},
		"overlapping CIDRs":            {"--service-cidr", "10.42.0.0/16"},
		"bad node port range":          {"--service-node-port-range", "32767-30000"},
		"bad bind address":             {"--bind-address", "localhost"},
		"request timeout not positive": {"--request-timeout", "0s"},
		"negative in-flight limit":     {"--max-requests-inflight", "-1"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"server", "--data-dir", t.TempDir(), "--write-kubeconfig", "", "--https-listen-port", "0", "--bind-address", "127.0.0.1"}, args...)
			// Cancelled from the start: a server that wrongly accepted
			// the flags shuts down at once rather than hang the test.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var stdout, stderr strings.Builder
			if code := run(ctx, args, &stdout, &stderr); code == 0 {
				t.Errorf("exit 0 for %v", args)
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q on stdout", stdout.String())
			}
		})
	}
}

func TestSecondServerOnSameDataDirFails(t *testing.T) {
	dataDir := t.TempDir()
	p := startServer(t, dataDir)
	ca, err := os.ReadFile(filepath.Join(dataDir, "server", "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // should it start after all, it stops at once
	var stdout, stderr strings.Builder
	code := run(ctx, []string{"server", "--data-dir", dataDir, "--bind-address", "127.0.0.1", "--https-listen-port", "0",
		"--write-kubeconfig", filepath.Join(t.TempDir(), "kc.yaml"), "--disable-agent"}, &stdout, &stderr)
	if code == 0 {
		t.Fatal("a second server started on a data dir in use")
	}
	if !strings.Contains(stderr.String(), "another process") {
		t.Errorf("second server's error does not say the data dir is in use:\n%s", stderr.String())
	}
	after, err := os.ReadFile(filepath.Join(dataDir, "server", "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(ca) {
		t.Error("the second server touched the CA")
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("first server: exit %v", err)
	}
}
