package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tinykube/tinykube/internal/satoken"
	"github.com/tinykube/tinykube/kubelet/sandbox"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// volumeError is a volume that cannot be set up yet (a missing ConfigMap
// or Secret): the pod's containers wait in ContainerCreating.
type volumeError struct{ error }

// volumeDir is where a pod volume that the kubelet materializes lives.
func (k *Kubelet) volumeDir(pod *corev1.Pod, name string) string {
	return filepath.Join(k.podDir(string(pod.UID)), "volumes", name)
}

// volumeHostPath is the host path behind a pod volume.
func (k *Kubelet) volumeHostPath(pod *corev1.Pod, v *corev1.Volume) string {
	if v.HostPath != nil {
		return v.HostPath.Path
	}
	return k.volumeDir(pod, v.Name)
}

// setupVolumes materializes the pod's volumes: emptyDir, hostPath,
// configMap, secret, downwardAPI and projected (configMap, secret,
// downwardAPI, serviceAccountToken). Contents are refreshed on every sync.
func (k *Kubelet) setupVolumes(ctx context.Context, pod *corev1.Pod, sb sandbox.Sandbox) error {
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		dir := k.volumeDir(pod, v.Name)
		var files map[string]fileContent
		var err error
		switch {
		case v.EmptyDir != nil:
			err = os.MkdirAll(dir, 0o777)
			if err == nil {
				err = os.Chmod(dir, 0o777)
			}
		case v.HostPath != nil:
			err = setupHostPath(v.HostPath)
		case v.ConfigMap != nil:
			files, err = k.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, v.ConfigMap.DefaultMode)
		case v.Secret != nil:
			files, err = k.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, v.Secret.DefaultMode)
		case v.DownwardAPI != nil:
			files = k.downwardFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode, sb)
		case v.Projected != nil:
			files, err = k.projectedFiles(ctx, pod, v.Projected, sb, dir)
		default:
			// The API server refuses these; a pod stored before it did
			// waits with FailedMount rather than run on an empty
			// directory in place of its data.
			err = volumeError{fmt.Errorf("volume %q: this node cannot provide %s volumes", v.Name, volumeKind(v.VolumeSource))}
		}
		if err != nil {
			return err
		}
		if files != nil {
			if err := writeVolume(dir, files); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
	}
	return nil
}

func setupHostPath(hp *corev1.HostPathVolumeSource) error {
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	switch typ {
	case corev1.HostPathDirectoryOrCreate:
		return os.MkdirAll(hp.Path, 0o755)
	case corev1.HostPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	case corev1.HostPathDirectory, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev:
		if _, err := os.Stat(hp.Path); err != nil {
			return volumeError{fmt.Errorf("hostPath type check failed: %s is not a %s", hp.Path, typ)}
		}
	}
	return nil
}

type fileContent struct {
	data []byte
	mode os.FileMode
	// owner, when set, is the uid the file belongs to.
	owner *int64
}

func fileMode(item *int32, def *int32, fallback os.FileMode) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item)
	case def != nil:
		return os.FileMode(*def)
	}
	return fallback
}

func keyFiles(data map[string][]byte, items []corev1.KeyToPath, defMode *int32, kind, name string) (map[string]fileContent, error) {
	files := map[string]fileContent{}
	if len(items) == 0 {
		for key, v := range data {
			files[key] = fileContent{data: v, mode: fileMode(nil, defMode, 0o644)}
		}
		return files, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return nil, volumeError{fmt.Errorf("configmap references non-existent config key: %s", it.Key)}
		}
		files[it.Path] = fileContent{data: v, mode: fileMode(it.Mode, defMode, 0o644)}
	}
	_ = kind
	_ = name
	return files, nil
}

func (k *Kubelet) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool, defMode *int32) (map[string]fileContent, error) {
	cm, err := k.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if optional != nil && *optional {
			return map[string]fileContent{}, nil
		}
		return nil, volumeError{fmt.Errorf("configmap %q not found", name)}
	}
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{}
	for key, v := range cm.Data {
		data[key] = []byte(v)
	}
	for key, v := range cm.BinaryData {
		data[key] = v
	}
	return keyFiles(data, items, defMode, "configmap", name)
}

func (k *Kubelet) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool, defMode *int32) (map[string]fileContent, error) {
	sec, err := k.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if optional != nil && *optional {
			return map[string]fileContent{}, nil
		}
		return nil, volumeError{fmt.Errorf("secret %q not found", name)}
	}
	if err != nil {
		return nil, err
	}
	return keyFiles(sec.Data, items, defMode, "secret", name)
}

func (k *Kubelet) downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defMode *int32, sb sandbox.Sandbox) map[string]fileContent {
	files := map[string]fileContent{}
	for _, it := range items {
		var v string
		switch {
		case it.FieldRef != nil:
			switch it.FieldRef.FieldPath {
			case "metadata.labels":
				v = formatMap(pod.Labels)
			case "metadata.annotations":
				v = formatMap(pod.Annotations)
			default:
				v = podField(pod, it.FieldRef.FieldPath, sb, k.cfg.NodeIP.String())
			}
		case it.ResourceFieldRef != nil:
			for i := range pod.Spec.Containers {
				if pod.Spec.Containers[i].Name == it.ResourceFieldRef.ContainerName {
					v = resourceField(&pod.Spec.Containers[i], it.ResourceFieldRef)
				}
			}
		}
		files[it.Path] = fileContent{data: []byte(v), mode: fileMode(it.Mode, defMode, 0o644)}
	}
	return files
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, key := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", key, m[key])
	}
	return b.String()
}

// projectedFiles are the files of a projected volume whose directory is
// dir.
func (k *Kubelet) projectedFiles(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource, sb sandbox.Sandbox, dir string) (map[string]fileContent, error) {
	files := map[string]fileContent{}
	add := func(more map[string]fileContent) {
		for path, c := range more {
			files[path] = c
		}
	}
	for _, src := range p.Sources {
		switch {
		case src.ConfigMap != nil:
			f, err := k.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, p.DefaultMode)
			if err != nil {
				return nil, err
			}
			add(f)
		case src.Secret != nil:
			f, err := k.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional, p.DefaultMode)
			if err != nil {
				return nil, err
			}
			add(f)
		case src.DownwardAPI != nil:
			add(k.downwardFiles(pod, src.DownwardAPI.Items, p.DefaultMode, sb))
		case src.ServiceAccountToken != nil:
			token, err := k.serviceAccountToken(ctx, pod, src.ServiceAccountToken, filepath.Join(dir, filepath.Clean("/" + src.ServiceAccountToken.Path)[1:]))
			if err != nil {
				return nil, err
			}
			files[src.ServiceAccountToken.Path] = tokenFile(pod, token, fileMode(nil, p.DefaultMode, 0o644))
		}
	}
	return files, nil
}

// tokenFile is a projected token file. When every container runs as the
// same user, the token is that user's alone (0600), as upstream's kubelet
// writes it, rather than readable by every user of the container. With
// an fsGroup upstream makes it 0640 for that group, which it adds to the
// containers' groups; this kubelet does neither, so such pods keep the
// projection's mode.
func tokenFile(pod *corev1.Pod, token []byte, mode os.FileMode) fileContent {
	owner := podUser(pod)
	if owner == nil || (pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.FSGroup != nil) {
		return fileContent{data: token, mode: mode}
	}
	return fileContent{data: token, mode: 0o600, owner: owner}
}

// podUser is the user every init and app container runs as, as its
// securityContext or the pod's says; nil when one says none or two
// differ.
func podUser(pod *corev1.Pod) *int64 {
	var user *int64
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range containers {
			var uid *int64
			if pod.Spec.SecurityContext != nil {
				uid = pod.Spec.SecurityContext.RunAsUser
			}
			if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
				uid = c.SecurityContext.RunAsUser
			}
			if uid == nil || (user != nil && *user != *uid) {
				return nil
			}
			user = uid
		}
	}
	return user
}

// Token refresh, as upstream's kubelet token manager does it: a token is
// replaced once 80% of its requested lifetime has passed, and at the
// latest after a day, whatever it asked for.
const (
	tokenRefreshFraction = 0.8
	tokenMaxAge          = 24 * time.Hour
	// defaultTokenExpirationSeconds is the API's default of a projection's
	// expirationSeconds.
	defaultTokenExpirationSeconds = 3600
)

// serviceAccountToken is the content of a projected serviceAccountToken
// file: the token at current (the file the volume holds now) while it is
// fresh, else a new one from a TokenRequest for the pod's service account,
// bound to the pod. A failed refresh keeps the current token while it is
// valid; a pod that has none yet waits in ContainerCreating.
func (k *Kubelet) serviceAccountToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection, current string) ([]byte, error) {
	seconds := int64(defaultTokenExpirationSeconds)
	if src.ExpirationSeconds != nil && *src.ExpirationSeconds > 0 {
		seconds = *src.ExpirationSeconds
	}
	now := k.clock.Now()
	// The token the volume holds is read back, not verified: it came
	// from the API server.
	old, _ := os.ReadFile(current)
	oldClaims, err := satoken.ParseUnverified(string(old))
	usable := err == nil && tokenBoundTo(oldClaims, pod.UID, src.Audience)
	if usable && !tokenNeedsRefresh(oldClaims, time.Duration(seconds)*time.Second, now) {
		return old, nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := k.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		if usable && now.Before(time.Unix(oldClaims.Expiry, 0)) {
			k.log.Warn("refreshing the service account token failed; keeping the current one", "pod", klog.KObj(pod), "err", err)
			return old, nil
		}
		return nil, volumeError{fmt.Errorf("failed to fetch token: %w", err)}
	}
	return []byte(tr.Status.Token), nil
}

// tokenBoundTo reports whether the token is the pod's and for audience
// (any, when the projection names none and the API server chose).
func tokenBoundTo(c *satoken.Claims, pod types.UID, audience string) bool {
	return c.Kubernetes.Pod != nil && c.Kubernetes.Pod.UID == string(pod) && (audience == "" || slices.Contains(c.Audience, audience))
}

// tokenNeedsRefresh: 80% of the requested lifetime or a day has passed
// since the token was issued.
func tokenNeedsRefresh(c *satoken.Claims, requested time.Duration, now time.Time) bool {
	issued := time.Unix(c.IssuedAt, 0)
	return !now.Before(issued.Add(time.Duration(float64(requested)*tokenRefreshFraction))) || !now.Before(issued.Add(tokenMaxAge))
}

// writeVolume makes dir hold exactly files, rewriting only what changed.
func writeVolume(dir string, files map[string]fileContent) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for path, c := range files {
		clean := filepath.Clean("/" + path)[1:]
		if clean == "" || strings.HasPrefix(clean, "..") {
			return fmt.Errorf("bad path %q", path)
		}
		full := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := writeVolumeFile(full, c); err != nil {
			return err
		}
	}
	return nil
}

// writeVolumeFile makes path hold c. New content goes to a temporary file
// that has c's mode and owner before it replaces path, so a container
// never sees a partial file, nor a token readable by others for a moment.
func writeVolumeFile(path string, c fileContent) error {
	if old, err := os.ReadFile(path); err != nil || string(old) != string(c.data) {
		tmp := path + ".tmp"
		_ = os.Remove(tmp)
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, c.mode.Perm())
		if err != nil {
			return err
		}
		_, err = f.Write(c.data)
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
		if err == nil {
			err = ownAndChmod(tmp, c)
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
		return err
	}
	return ownAndChmod(path, c)
}

// ownAndChmod gives path c's owner, when it names one, and mode (which
// the umask may have narrowed at creation).
func ownAndChmod(path string, c fileContent) error {
	if c.owner != nil {
		if err := os.Chown(path, int(*c.owner), -1); err != nil {
			return err
		}
	}
	return os.Chmod(path, c.mode.Perm())
}

// volumeMounts are the container's volumeMounts as OCI bind mounts.
func (k *Kubelet) volumeMounts(pod *corev1.Pod, c *corev1.Container) ([]specs.Mount, error) {
	byName := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		byName[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var out []specs.Mount
	for _, m := range c.VolumeMounts {
		v, ok := byName[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q not found", m.Name)
		}
		src := k.volumeHostPath(pod, v)
		if m.SubPath != "" {
			src = filepath.Join(src, filepath.Clean("/" + m.SubPath)[1:])
			if _, err := os.Stat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, err
				}
			}
		}
		opts := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		out = append(out, specs.Mount{Destination: m.MountPath, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

// volumeKind is the JSON name of the volume source that is set, such as
// "persistentVolumeClaim".
func volumeKind(src corev1.VolumeSource) string {
	data, err := json.Marshal(src)
	if err != nil {
		return "unknown"
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return "unknown"
	}
	for k := range fields {
		return k
	}
	return "unknown"
}
