package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/fields"

	"github.com/tinykube/tinykube/apiserver/authn"
)

// Decision is an authorizer's answer.
type Decision int

const (
	// NoOpinion lets the next authorizer in a chain decide; at the end
	// of the chain it means the request is forbidden.
	NoOpinion Decision = iota
	// Allow lets the request proceed; the chain stops.
	Allow
	// Deny forbids the request; the chain stops.
	Deny
)

// Attributes describe one request, as upstream's authorizer.Attributes.
type Attributes struct {
	User authn.User
	// Verb is the lower-case API verb (get, list, watch, create, update,
	// patch, delete, deletecollection, or another such as impersonate)
	// for resource requests, the lower-case HTTP method otherwise.
	Verb string

	// ResourceRequest tells resource requests (/api, /apis with a
	// resource) from non-resource requests (/healthz, discovery).
	ResourceRequest bool
	APIGroup        string
	APIVersion      string
	Resource        string
	Subresource     string
	Namespace       string
	// Name is the object's name; for list and watch, the name a
	// metadata.name field selector asks for.
	Name string
	// FieldSelector holds the requirements of a list or watch's field
	// selector (the Node authorizer allows pod lists scoped to the node).
	FieldSelector fields.Requirements

	// Path is the URL path of a non-resource request.
	Path string
}

// Authorizer decides on requests. It returns a reason with its decision
// (it ends up in a 403's message) and an error when it could not decide.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (Decision, string, error)
}

// Union asks each authorizer in turn; the first Allow or Deny wins. When
// none has an opinion the reasons given are joined, as upstream's union
// authorizer joins them.
type Union []Authorizer

// Authorize implements Authorizer.
func (u Union) Authorize(ctx context.Context, a Attributes) (Decision, string, error) {
	var reasons []string
	var errs []error
	for _, z := range u {
		d, reason, err := z.Authorize(ctx, a)
		if err != nil {
			errs = append(errs, err)
		}
		if reason != "" {
			reasons = append(reasons, reason)
		}
		if d == Allow || d == Deny {
			return d, reason, err
		}
	}
	return NoOpinion, strings.Join(reasons, "\n"), errors.Join(errs...)
}

// PrivilegedGroups allows everything to members of any of its groups, as
// kube-apiserver does for system:masters before asking any other
// authorizer (so a broken RBAC policy cannot lock the admin out).
type PrivilegedGroups []string

// Authorize implements Authorizer.
func (p PrivilegedGroups) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	for _, g := range a.User.Groups {
		if slices.Contains(p, g) {
			return Allow, "", nil
		}
	}
	return NoOpinion, "", nil
}

// ForbiddenMessage is the first part of a 403's message, exactly as
// upstream words it, e.g.
// `User "alice" cannot list resource "pods" in API group "" in the namespace "default"`.
func ForbiddenMessage(a Attributes) string {
	if !a.ResourceRequest {
		return fmt.Sprintf("User %q cannot %s path %q", a.User.Name, a.Verb, a.Path)
	}
	resource := a.Resource
	if a.Subresource != "" {
		resource += "/" + a.Subresource
	}
	if a.Namespace != "" {
		return fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q", a.User.Name, a.Verb, resource, a.APIGroup, a.Namespace)
	}
	return fmt.Sprintf("User %q cannot %s resource %q in API group %q at the cluster scope", a.User.Name, a.Verb, resource, a.APIGroup)
}
