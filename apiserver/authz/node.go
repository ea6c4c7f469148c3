package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// Node identities, as upstream names them: a kubelet authenticates as
// system:node:<node name> in the group system:nodes.
const (
	NodesGroup     = "system:nodes"
	NodeUserPrefix = "system:node:"
)

// NodeIdentity returns the node a user acts for: isNode when the user is
// in system:nodes and named system:node:<name>; name is empty for a
// member of the group whose name does not say which node.
func NodeIdentity(u authn.User) (name string, isNode bool) {
	if !slices.Contains(u.Groups, NodesGroup) || !strings.HasPrefix(u.Name, NodeUserPrefix) {
		return "", false
	}
	return strings.TrimPrefix(u.Name, NodeUserPrefix), true
}

// PodLister finds the pods a node runs, for the Node authorizer's
// question "is this object used by a pod bound to this node". It
// replaces upstream's graph with the question itself: the pods of the
// object's namespace whose spec.nodeName is the node.
type PodLister interface {
	// PodsOnNode returns the pods in namespace with spec.nodeName node.
	PodsOnNode(ctx context.Context, namespace, node string) ([]*corev1.Pod, error)
}

// NodeAuthorizer authorizes kubelets as upstream's Node authorizer (with
// AuthorizeNodeWithSelectors, on by default since 1.32):
//   - secrets, configmaps: get, list, watch of single objects referenced
//     by a pod bound to the node; persistentvolumeclaims: get of those;
//     serviceaccounts/token: create for the service account of such a pod;
//   - leases: its own in kube-node-lease;
//   - nodes: create, update, patch (NodeRestriction admission limits them
//     to its own) and get, list, watch of its own Node object;
//   - pods: get of pods bound to it, list and watch with the field
//     selector spec.nodeName=<node>, create and delete (mirror pods,
//     limited by admission), status updates and evictions;
//   - everything else: what NodeRules grant.
//
// It never denies: requests it has no rule for go on to RBAC.
type NodeAuthorizer struct {
	Pods PodLister
	// Rules grant what is not subdivided by node: NodeRules().
	Rules []rbacv1.PolicyRule
}

// Authorize implements Authorizer.
func (n NodeAuthorizer) Authorize(ctx context.Context, a Attributes) (Decision, string, error) {
	node, isNode := NodeIdentity(a.User)
	if !isNode {
		return NoOpinion, "", nil
	}
	if node == "" {
		return NoOpinion, fmt.Sprintf("unknown node for user %q", a.User.Name), nil
	}
	if a.ResourceRequest {
		switch {
		case a.APIGroup == "" && a.Resource == "secrets", a.APIGroup == "" && a.Resource == "configmaps":
			return n.authorizeRead(ctx, node, a)
		case a.APIGroup == "" && a.Resource == "persistentvolumeclaims":
			return n.authorizeGet(ctx, node, a)
		case a.APIGroup == "" && a.Resource == "persistentvolumes",
			a.APIGroup == "resource.k8s.io" && a.Resource == "resourceclaims",
			a.APIGroup == "storage.k8s.io" && a.Resource == "volumeattachments":
			// Served objects of these kinds would need more of upstream's
			// graph; tinykube does not serve them.
			return NoOpinion, noRelationship(node), nil
		case a.APIGroup == "" && a.Resource == "serviceaccounts":
			return n.authorizeCreateToken(ctx, node, a)
		case a.APIGroup == "coordination.k8s.io" && a.Resource == "leases":
			return authorizeLease(node, a)
		case a.APIGroup == "" && a.Resource == "nodes":
			return authorizeNodeObject(node, a)
		case a.APIGroup == "" && a.Resource == "pods":
			return n.authorizePod(ctx, node, a)
		}
	}
	if RulesAllow(a, n.Rules...) {
		return Allow, "", nil
	}
	return NoOpinion, "", nil
}

func noRelationship(node string) string {
	return fmt.Sprintf("no relationship found between node '%s' and this object", node)
}

func (n NodeAuthorizer) authorizeRead(ctx context.Context, node string, a Attributes) (Decision, string, error) {
	switch {
	case a.Verb != "get" && a.Verb != "list" && a.Verb != "watch":
		return NoOpinion, "can only read resources of this type", nil
	case a.Subresource != "":
		return NoOpinion, "cannot read subresource", nil
	case a.Namespace == "":
		return NoOpinion, "can only read namespaced object of this type", nil
	}
	return n.authorizeReferenced(ctx, node, a)
}

func (n NodeAuthorizer) authorizeGet(ctx context.Context, node string, a Attributes) (Decision, string, error) {
	switch {
	case a.Verb != "get":
		return NoOpinion, "can only get individual resources of this type", nil
	case a.Subresource != "":
		return NoOpinion, "cannot get subresource", nil
	}
	return n.authorizeReferenced(ctx, node, a)
}

func (n NodeAuthorizer) authorizeCreateToken(ctx context.Context, node string, a Attributes) (Decision, string, error) {
	switch {
	case a.Verb != "create" || a.Name == "":
		return NoOpinion, "can only create tokens for individual service accounts", nil
	case a.Subresource != "token":
		return NoOpinion, "can only create token subresource of serviceaccount", nil
	}
	return n.authorizeReferenced(ctx, node, a)
}

// authorizeReferenced allows the request when a pod bound to node uses
// the named object.
func (n NodeAuthorizer) authorizeReferenced(ctx context.Context, node string, a Attributes) (Decision, string, error) {
	if a.Name == "" {
		return NoOpinion, "No Object name found", nil
	}
	pods, err := n.Pods.PodsOnNode(ctx, a.Namespace, node)
	if err != nil {
		return NoOpinion, noRelationship(node), nil
	}
	for _, p := range pods {
		if podReferences(p, a.Resource, a.Name) {
			return Allow, "", nil
		}
	}
	return NoOpinion, noRelationship(node), nil
}

func authorizeLease(node string, a Attributes) (Decision, string, error) {
	switch a.Verb {
	case "get", "create", "update", "patch", "delete":
	default:
		return NoOpinion, "can only get, create, update, patch, or delete a node lease", nil
	}
	if a.Namespace != corev1.NamespaceNodeLease {
		return NoOpinion, fmt.Sprintf("can only access leases in the %q system namespace", corev1.NamespaceNodeLease), nil
	}
	// The name of a create is checked by NodeRestriction admission,
	// which sees the object.
	if a.Verb != "create" && a.Name != node {
		return NoOpinion, "can only access node lease with the same name as the requesting node", nil
	}
	return Allow, "", nil
}

func authorizeNodeObject(node string, a Attributes) (Decision, string, error) {
	switch a.Subresource {
	case "":
		switch a.Verb {
		case "create", "update", "patch":
			// NodeRestriction admission limits these to its own Node.
			return Allow, "", nil
		case "get", "list", "watch":
			switch a.Name {
			case node:
				return Allow, "", nil
			case "":
				return NoOpinion, fmt.Sprintf("node '%s' cannot read all nodes, only its own Node object", node), nil
			default:
				return NoOpinion, fmt.Sprintf("node '%s' cannot read '%s', only its own Node object", node, a.Name), nil
			}
		}
	case "status":
		if a.Verb == "update" || a.Verb == "patch" {
			return Allow, "", nil
		}
	}
	return NoOpinion, "", nil
}

func (n NodeAuthorizer) authorizePod(ctx context.Context, node string, a Attributes) (Decision, string, error) {
	switch a.Subresource {
	case "":
		switch a.Verb {
		case "get":
			return n.authorizeGet(ctx, node, a)
		case "list", "watch":
			for _, r := range a.FieldSelector {
				if r.Field == "spec.nodeName" && (r.Operator == selection.Equals || r.Operator == selection.DoubleEquals) && r.Value == node {
					return Allow, "", nil
				}
			}
			if a.Name != "" {
				return n.authorizeReferenced(ctx, node, a)
			}
			return NoOpinion, "can only list/watch pods with spec.nodeName field selector", nil
		case "create", "delete":
			// Mirror pods; NodeRestriction admission limits them to pods
			// bound to this node.
			return Allow, "", nil
		}
	case "status":
		if a.Verb == "update" || a.Verb == "patch" {
			return Allow, "", nil
		}
	case "eviction":
		if a.Verb == "create" {
			return Allow, "", nil
		}
	}
	return NoOpinion, "", nil
}
