package kubelet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/tinykube/tinykube/kubelet/containers"
	"github.com/tinykube/tinykube/kubelet/images"
	"github.com/tinykube/tinykube/kubelet/sandbox"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// normalizeImage turns "nginx" into "docker.io/library/nginx:latest".
func normalizeImage(image string) (string, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", err
	}
	return named.String(), nil
}

// ensureImage makes the container's image present according to its
// imagePullPolicy and returns its normalized reference, or why the
// container waits.
func (k *Kubelet) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (string, waiting, error) {
	ref, err := normalizeImage(c.Image)
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err)
		k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventInspectFailed, "%s", msg)
		return "", waiting{reason: "InvalidImageName", message: msg}, nil
	}
	present, err := k.images.ImagePresent(ctx, ref)
	if err != nil {
		return "", waiting{}, err
	}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if strings.HasSuffix(ref, ":latest") && !strings.Contains(c.Image, "@") {
			policy = corev1.PullAlways
		}
	}
	switch {
	case policy == corev1.PullNever && !present:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
		k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventErrImageNeverPull, "%s", msg)
		return "", waiting{reason: "ErrImageNeverPull", message: msg}, nil
	case present && policy != corev1.PullAlways:
		k.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventPulled, "Container image %q already present on machine", c.Image)
		return ref, waiting{}, nil
	}
	// Upstream's image pull back-off: after a failure, syncs within the
	// delay wait in ImagePullBackOff without pulling.
	pullKey := string(pod.UID) + "/" + c.Name + "/pull"
	k.mu.Lock()
	if e := k.backoff[pullKey]; e != nil && k.clock.Now().Before(e.failedAt.Add(e.delay)) {
		msg := fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.Image, e.lastErr)
		k.mu.Unlock()
		k.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventBackOff, "Back-off pulling image %q", c.Image)
		return "", waiting{reason: "ImagePullBackOff", message: msg}, nil
	}
	k.mu.Unlock()
	resolver := k.registries.Resolver(k.pullSecrets(ctx, pod))
	k.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventPulling, "Pulling image %q", c.Image)
	pullStart := k.clock.Now()
	size, err := k.images.PullImage(ctx, ref, resolver)
	if err != nil {
		if present {
			// Keep running what we have when the registry is unreachable.
			k.log.Warn("pull failed; using the image present", "image", ref, "err", err)
			return ref, waiting{}, nil
		}
		k.mu.Lock()
		e := k.backoff[pullKey]
		if e == nil {
			e = &backoffEntry{delay: backoffInitial}
			k.backoff[pullKey] = e
		} else {
			e.delay = min(2*e.delay, backoffMax)
		}
		e.failedAt = k.clock.Now()
		e.lastErr = err.Error()
		k.mu.Unlock()
		msg := fmt.Sprintf("failed to pull and unpack image %q: %v", ref, err)
		k.containerEvent(pod, c.Name, corev1.EventTypeWarning, eventFailed, "Failed to pull image %q: %s", c.Image, msg)
		return "", waiting{reason: "ErrImagePull", message: msg}, nil
	}
	k.mu.Lock()
	delete(k.backoff, pullKey)
	k.mu.Unlock()
	took := k.clock.Since(pullStart).Truncate(time.Millisecond)
	k.containerEvent(pod, c.Name, corev1.EventTypeNormal, eventPulled, "Successfully pulled image %q in %s (%s including waiting). Image size: %d bytes.", c.Image, took, took, size)
	return ref, waiting{}, nil
}

// containerSpec builds what the runtime runs for container c.
func (k *Kubelet) containerSpec(ctx context.Context, pod *corev1.Pod, c *corev1.Container, image string, attempt int, sb sandbox.Sandbox, init bool) (containers.Spec, waiting, error) {
	env, err := k.containerEnv(ctx, pod, c, sb, k.podServiceEnv(pod))
	if err != nil {
		var cfgErr configError
		if errors.As(err, &cfgErr) {
			return containers.Spec{}, waiting{reason: "CreateContainerConfigError", message: err.Error()}, nil
		}
		return containers.Spec{}, waiting{}, err
	}
	mounts, err := k.volumeMounts(pod, c)
	if err != nil {
		return containers.Spec{}, waiting{reason: "CreateContainerConfigError", message: err.Error()}, nil
	}
	vars := map[string]string{}
	for _, e := range env {
		name, value, _ := strings.Cut(e, "=")
		vars[name] = value
	}
	s := containers.Spec{
		Pod:         containers.Pod{UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name},
		Name:        c.Name,
		Attempt:     attempt,
		Init:        init,
		Image:       image,
		Command:     expandAll(c.Command, vars),
		Args:        expandAll(c.Args, vars),
		Env:         env,
		WorkingDir:  c.WorkingDir,
		NetNS:       sb.NetNS,
		UTSNS:       sb.UTSNS,
		IPCNS:       sb.IPCNS,
		Mounts:      append(k.podMounts(pod), mounts...),
		LogPath:     k.logPath(pod, c.Name, attempt),
		GracePeriod: pod.Spec.TerminationGracePeriodSeconds,
		SpecOpts:    securityOpts(pod, c),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		TTY:         c.TTY,
	}
	return s, waiting{}, nil
}

// configError is a container config the kubelet cannot satisfy yet (a
// missing ConfigMap or Secret key): CreateContainerConfigError.
type configError struct{ error }

// containerEnv resolves env and envFrom, upstream's order: envFrom first,
// then env, with $(VAR) expanded from earlier entries and then the Service
// variables svcEnv, which follow (sorted) unless the container sets the
// same name. HOSTNAME is the pod's hostname.
func (k *Kubelet) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, sb sandbox.Sandbox, svcEnv map[string]string) ([]string, error) {
	vars := map[string]string{}
	// scope is what $(VAR) sees: the container's own variables over the
	// Services'.
	scope := maps.Clone(svcEnv)
	if scope == nil {
		scope = map[string]string{}
	}
	var order []string
	set := func(name, value string) {
		if _, ok := vars[name]; !ok {
			order = append(order, name)
		}
		vars[name] = value
		scope[name] = value
	}
	set("HOSTNAME", podHostname(pod))
	for _, ef := range c.EnvFrom {
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := k.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ef.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
					continue
				}
				return nil, configError{fmt.Errorf("configmap %q not found", ef.ConfigMapRef.Name)}
			}
			data = cm.Data
		case ef.SecretRef != nil:
			sec, err := k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ef.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
					continue
				}
				return nil, configError{fmt.Errorf("secret %q not found", ef.SecretRef.Name)}
			}
			data = map[string]string{}
			for key, v := range sec.Data {
				data[key] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for key := range data {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			set(ef.Prefix+key, data[key])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, scope))
			continue
		}
		v, skip, err := k.envValueFrom(ctx, pod, c, e.ValueFrom, sb)
		if err != nil {
			return nil, err
		}
		if !skip {
			set(e.Name, v)
		}
	}
	out := make([]string, 0, len(order)+len(svcEnv))
	for _, n := range order {
		out = append(out, n+"="+vars[n])
	}
	for _, n := range slices.Sorted(maps.Keys(svcEnv)) {
		if _, ok := vars[n]; !ok {
			out = append(out, n+"="+svcEnv[n])
		}
	}
	return out, nil
}

// podServiceEnv is the Service variables of the pod's containers.
func (k *Kubelet) podServiceEnv(pod *corev1.Pod) map[string]string {
	var services []*corev1.Service
	for _, obj := range k.services.GetStore().List() {
		services = append(services, obj.(*corev1.Service))
	}
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	return serviceEnv(services, pod.Namespace, links)
}

func (k *Kubelet) envValueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, from *corev1.EnvVarSource, sb sandbox.Sandbox) (string, bool, error) {
	switch {
	case from.FieldRef != nil:
		return podField(pod, from.FieldRef.FieldPath, sb, k.cfg.NodeIP.String()), false, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm, err := k.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if optional && apierrors.IsNotFound(err) {
				return "", true, nil
			}
			return "", false, configError{fmt.Errorf("configmap %q not found", ref.Name)}
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			return "", false, configError{fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)}
		}
		return v, false, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		sec, err := k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if optional && apierrors.IsNotFound(err) {
				return "", true, nil
			}
			return "", false, configError{fmt.Errorf("secret %q not found", ref.Name)}
		}
		v, ok := sec.Data[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			return "", false, configError{fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)}
		}
		return string(v), false, nil
	case from.ResourceFieldRef != nil:
		return resourceField(c, from.ResourceFieldRef), false, nil
	}
	return "", true, nil
}

// podField resolves a downward API fieldPath.
func podField(pod *corev1.Pod, path string, sb sandbox.Sandbox, hostIP string) string {
	switch path {
	case "metadata.name":
		return pod.Name
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return pod.Spec.NodeName
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName
	case "status.hostIP", "status.hostIPs":
		return hostIP
	case "status.podIP", "status.podIPs":
		if sb.IP.IsValid() {
			return sb.IP.String()
		}
		if pod.Spec.HostNetwork {
			return hostIP
		}
		return ""
	}
	for _, m := range []struct {
		prefix string
		values map[string]string
	}{{"metadata.labels['", pod.Labels}, {"metadata.annotations['", pod.Annotations}} {
		if key, ok := strings.CutPrefix(path, m.prefix); ok {
			return m.values[strings.TrimSuffix(key, "']")]
		}
	}
	return ""
}

func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) string {
	divisor := ref.Divisor
	var q = c.Resources.Limits
	name := ref.Resource
	if after, ok := strings.CutPrefix(name, "requests."); ok {
		q = c.Resources.Requests
		name = after
	} else {
		name = strings.TrimPrefix(name, "limits.")
	}
	v, ok := q[corev1.ResourceName(name)]
	if !ok {
		return "0"
	}
	if divisor.IsZero() {
		if name == "cpu" {
			return strconv.FormatInt(v.MilliValue()/1000+boolInt(v.MilliValue()%1000 != 0), 10)
		}
		return strconv.FormatInt(v.Value(), 10)
	}
	return strconv.FormatInt((v.MilliValue()+divisor.MilliValue()-1)/divisor.MilliValue(), 10)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// expand replaces $(VAR) with earlier variables, leaves unknown references
// as they are and turns $$ into $, as upstream.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func expandAll(in []string, vars map[string]string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, vars)
	}
	return out
}

// pullSecrets are the credentials in the pod's imagePullSecrets.
func (k *Kubelet) pullSecrets(ctx context.Context, pod *corev1.Pod) images.Credentials {
	var data []map[string][]byte
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			k.log.Warn("imagePullSecret", "pod", klog.KObj(pod), "secret", ref.Name, "err", err)
			continue
		}
		data = append(data, s.Data)
	}
	return images.DockerConfigCredentials(data)
}
