package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/authz"
)

// NodeRestriction is upstream's admission plugin of that name: a kubelet
// may write only its own Node and Lease, and only mirror pods bound to it
// and the status of pods bound to it. Creates and updates are checked
// with the objects; deletes and evictions against the stored object.
type NodeRestriction struct {
	Objects ObjectGetter
}

var _ Validator = NodeRestriction{}

// Name is the plugin's upstream name.
func (NodeRestriction) Name() string { return "NodeRestriction" }

var (
	podsResource   = schema.GroupResource{Resource: "pods"}
	nodesResource  = schema.GroupResource{Resource: "nodes"}
	leasesResource = schema.GroupResource{Group: coordinationv1.GroupName, Resource: "leases"}
)

// Validate checks a node's writes of pods, nodes and leases.
func (n NodeRestriction) Validate(ctx context.Context, a *Attributes) error {
	if a.Object == nil {
		return n.validateRequest(ctx, a)
	}
	switch a.Resource.GroupResource() {
	case podsResource, nodesResource, leasesResource:
		return n.validateWrite(ctx, a)
	}
	return nil
}

// requestingNode returns the node the request's user is; ok is false
// for anyone else. A member of system:nodes whose name names no node is
// refused outright, as upstream refuses it.
func requestingNode(ctx context.Context, gr schema.GroupResource, name string) (node string, ok bool, err error) {
	user, authenticated := authn.UserFrom(ctx)
	if !authenticated {
		return "", false, nil
	}
	node, isNode := authz.NodeIdentity(user)
	if !isNode {
		return "", false, nil
	}
	if node == "" {
		return "", false, apierrors.NewForbidden(gr, name, fmt.Errorf("could not determine node from user %q", user.Name))
	}
	return node, true, nil
}

// validateWrite checks a node's create or update of a pod, node or lease.
func (n NodeRestriction) validateWrite(ctx context.Context, a *Attributes) error {
	obj, old := a.Object, a.OldObject
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	name := m.GetName()
	if name == "" {
		name = m.GetGenerateName()
	}
	gr := a.Resource.GroupResource()
	node, isNode, err := requestingNode(ctx, gr, name)
	if !isNode || err != nil {
		return err
	}
	deny := func(format string, args ...any) error {
		return apierrors.NewForbidden(gr, name, fmt.Errorf(format, args...))
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		switch a.Subresource {
		case "":
			if old != nil {
				return deny("unexpected operation %q, node %q can only create and delete mirror pods", "UPDATE", node)
			}
			return n.admitMirrorPod(ctx, node, o, deny)
		case "status":
			oldPod, ok := old.(*corev1.Pod)
			if !ok {
				return deny("unexpected operation %q", "CREATE")
			}
			if oldPod.Spec.NodeName != node {
				return deny("node %q can only update pod status for pods with spec.nodeName set to itself", node)
			}
			if !labels.Equals(oldPod.Labels, o.Labels) {
				return deny("node %q cannot update labels through pod status", node)
			}
			if !equality.Semantic.DeepEqual(oldPod.Status.ResourceClaimStatuses, o.Status.ResourceClaimStatuses) {
				return deny("node %q cannot update resource claim statues", node)
			}
			return nil
		}
		return deny("unexpected pod subresource %q, only 'status' and 'eviction' are allowed", a.Subresource)
	case *corev1.Node:
		return admitOwnNode(node, o, old, deny)
	case *coordinationv1.Lease:
		return admitNodeLease(node, o.Namespace, o.Name, deny)
	}
	return nil
}

// admitMirrorPod allows a node to create only mirror pods bound to
// itself, owned by its Node, and using no other API object.
func (n NodeRestriction) admitMirrorPod(ctx context.Context, node string, pod *corev1.Pod, deny func(string, ...any) error) error {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; !mirror {
		return deny("pod does not have %q annotation, node %q can only create mirror pods", corev1.MirrorPodAnnotationKey, node)
	}
	if pod.Spec.NodeName != node {
		return deny("node %q can only create pods with spec.nodeName set to itself", node)
	}
	switch len(pod.OwnerReferences) {
	case 0:
		return deny("node %q can only create pods with an owner reference set to itself", node)
	case 1:
	default:
		return deny("node %q can only create pods with a single owner reference set to itself", node)
	}
	owner := pod.OwnerReferences[0]
	if owner.APIVersion != "v1" || owner.Kind != "Node" || owner.Name != node {
		return deny("node %q can only create pods with an owner reference set to itself", node)
	}
	if owner.Controller == nil || !*owner.Controller {
		return deny("node %q can only create pods with a controller owner reference set to itself", node)
	}
	if owner.BlockOwnerDeletion != nil && *owner.BlockOwnerDeletion {
		return deny("node %q must not set blockOwnerDeletion on an owner reference", node)
	}
	stored, err := n.Objects.Get(ctx, nodesResource.WithVersion("v1"), "", node)
	if err != nil {
		return err
	}
	sm, err := meta.Accessor(stored)
	if err != nil {
		return err
	}
	if uid := sm.GetUID(); owner.UID != uid {
		return deny("node %s UID mismatch: expected %s got %s", node, owner.UID, uid)
	}
	switch {
	case pod.Spec.ServiceAccountName != "":
		return deny("node %q can not create pods that reference a service account", node)
	case authz.PodReferencesAny(pod, "secrets"):
		return deny("node %q can not create pods that reference secrets", node)
	case authz.PodReferencesAny(pod, "configmaps"):
		return deny("node %q can not create pods that reference configmaps", node)
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(p corev1.VolumeProjection) bool { return p.ClusterTrustBundle != nil }) {
			return deny("node %q can not create pods that reference clustertrustbundles", node)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return deny("node %q can not create pods that reference persistentvolumeclaims", node)
		}
	}
	return nil
}

// admitOwnNode lets a node create or update only its own Node, without
// a config source, without changing its taints, and without setting
// labels outside the ones a kubelet may set.
func admitOwnNode(node string, obj *corev1.Node, old runtime.Object, deny func(string, ...any) error) error {
	if obj.Name != node {
		return deny("node %q is not allowed to modify node %q", node, obj.Name)
	}
	oldNode, updating := old.(*corev1.Node)
	if !updating {
		if obj.Spec.ConfigSource != nil {
			return deny("node %q is not allowed to create pods with a non-nil configSource", node)
		}
		if forbidden := forbiddenNodeLabels(obj.Labels, nil); len(forbidden) > 0 {
			return deny("node %q is not allowed to set the following labels: %s", node, strings.Join(forbidden, ", "))
		}
		return nil
	}
	if obj.Spec.ConfigSource != nil && !equality.Semantic.DeepEqual(obj.Spec.ConfigSource, oldNode.Spec.ConfigSource) {
		return deny("node %q is not allowed to update configSource to a new non-nil configSource", node)
	}
	if !equality.Semantic.DeepEqual(obj.Spec.Taints, oldNode.Spec.Taints) {
		return deny("node %q is not allowed to modify taints", node)
	}
	if forbidden := forbiddenNodeLabels(obj.Labels, oldNode.Labels); len(forbidden) > 0 {
		return deny("is not allowed to modify labels: %s", strings.Join(forbidden, ", "))
	}
	return nil
}

// kubeletLabels are the kubernetes.io labels a kubelet may set on its
// Node, as upstream's kubelet label policy lists them.
var kubeletLabels = []string{
	corev1.LabelHostname,
	corev1.LabelTopologyZone, corev1.LabelTopologyRegion,
	corev1.LabelFailureDomainBetaZone, corev1.LabelFailureDomainBetaRegion,
	corev1.LabelInstanceType, corev1.LabelInstanceTypeStable,
	corev1.LabelOSStable, corev1.LabelArchStable,
	"beta.kubernetes.io/os", "beta.kubernetes.io/arch",
}

// kubeletLabelDomains are label prefixes (and their subdomains) a kubelet
// may use freely.
var kubeletLabelDomains = []string{"kubelet.kubernetes.io", "node.kubernetes.io"}

// forbiddenNodeLabels returns, sorted, the labels added, changed or
// removed between old and labels that a node may not touch: the
// node-restriction.kubernetes.io domain, and kubernetes.io / k8s.io
// labels that are not kubelet labels.
func forbiddenNodeLabels(labels, old map[string]string) []string {
	modified := map[string]bool{}
	for k, v := range labels {
		if ov, ok := old[k]; !ok || ov != v {
			modified[k] = true
		}
	}
	for k := range old {
		if _, ok := labels[k]; !ok {
			modified[k] = true
		}
	}
	var forbidden []string
	for k := range modified {
		domain, _, hasDomain := strings.Cut(k, "/")
		if !hasDomain {
			continue
		}
		if inDomain(domain, corev1.LabelNamespaceNodeRestriction) ||
			(inDomain(domain, "kubernetes.io") || inDomain(domain, "k8s.io")) && !isKubeletLabel(k, domain) {
			forbidden = append(forbidden, k)
		}
	}
	slices.Sort(forbidden)
	return forbidden
}

func inDomain(domain, parent string) bool {
	return domain == parent || strings.HasSuffix(domain, "."+parent)
}

func isKubeletLabel(key, domain string) bool {
	return slices.Contains(kubeletLabels, key) ||
		slices.ContainsFunc(kubeletLabelDomains, func(d string) bool { return inDomain(domain, d) })
}

// admitNodeLease lets a node write only its own Lease in kube-node-lease.
func admitNodeLease(node, namespace, name string, deny func(string, ...any) error) error {
	if namespace != corev1.NamespaceNodeLease {
		return deny("can only access leases in the %q system namespace", corev1.NamespaceNodeLease)
	}
	if name != node {
		return deny("can only access node lease with the same name as the requesting node")
	}
	return nil
}

// validateRequest checks, before they are served, a node's deletes of
// pods, nodes and leases and its pod evictions, against the stored
// objects.
func (n NodeRestriction) validateRequest(ctx context.Context, a *Attributes) error {
	if a.Operation != Delete && !(a.Operation == Create && a.Subresource == "eviction") {
		return nil
	}
	gr := a.Resource.GroupResource()
	node, isNode, err := requestingNode(ctx, gr, a.Name)
	if !isNode || err != nil {
		return err
	}
	deny := func(format string, args ...any) error {
		return apierrors.NewForbidden(gr, a.Name, fmt.Errorf(format, args...))
	}
	switch gr {
	case podsResource:
		stored, err := n.Objects.Get(ctx, a.Resource, a.Namespace, a.Name)
		if err != nil {
			return err
		}
		if stored.(*corev1.Pod).Spec.NodeName == node {
			return nil
		}
		if a.Subresource == "eviction" {
			return deny("node %s can only evict pods with spec.nodeName set to itself", node)
		}
		return deny("node %q can only delete pods with spec.nodeName set to itself", node)
	case nodesResource:
		if a.Name != node {
			return deny("node %q is not allowed to modify node %q", node, a.Name)
		}
	case leasesResource:
		return admitNodeLease(node, a.Namespace, a.Name, deny)
	}
	return nil
}
