package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/authz"
)

// The impersonation headers kubectl --as, --as-group and --as-uid send,
// as upstream names them.
const (
	headerImpersonateUser        = "Impersonate-User"
	headerImpersonateGroup       = "Impersonate-Group"
	headerImpersonateUID         = "Impersonate-Uid"
	headerImpersonateExtraPrefix = "Impersonate-Extra-"
)

// impersonation is what a request's Impersonate-* headers ask to act as.
type impersonation struct {
	user   string
	groups []string
	uid    string
	extra  map[string][]string
}

func impersonationFrom(h http.Header) (impersonation, bool) {
	imp := impersonation{user: h.Get(headerImpersonateUser), groups: h.Values(headerImpersonateGroup), uid: h.Get(headerImpersonateUID)}
	for k, v := range h {
		if key, ok := strings.CutPrefix(k, textproto.CanonicalMIMEHeaderKey(headerImpersonateExtraPrefix)); ok {
			if imp.extra == nil {
				imp.extra = map[string][]string{}
			}
			imp.extra[strings.ToLower(unescapeExtraKey(key))] = v
		}
	}
	asked := imp.user != "" || len(imp.groups) > 0 || imp.uid != "" || len(imp.extra) > 0
	return imp, asked
}

// unescapeExtraKey undoes the percent-encoding kubectl applies to extra
// keys that are not valid header names.
func unescapeExtraKey(k string) string {
	if u, err := url.PathUnescape(k); err == nil {
		return u
	}
	return k
}

// impersonate returns the user the request acts as: requester itself,
// or, when the request carries Impersonate-* headers, the user they name,
// once the chain has allowed requester to impersonate each part of it
// (verb impersonate on users, groups, serviceaccounts, uids and
// userextras), as upstream's impersonation filter does.
func (s *Server) impersonate(ctx context.Context, h http.Header, requester authn.User) (authn.User, error) {
	imp, asked := impersonationFrom(h)
	if !asked {
		return requester, nil
	}
	if imp.user == "" {
		// Upstream answers this with a 500, too.
		return authn.User{}, apierrors.NewInternalError(fmt.Errorf("requested %v without impersonating a user", impersonationParts(imp)))
	}
	var checks []authz.Attributes
	check := func(group, resource, subresource, namespace, name string) {
		checks = append(checks, authz.Attributes{User: requester, Verb: "impersonate", ResourceRequest: true,
			APIGroup: group, Resource: resource, Subresource: subresource, Namespace: namespace, Name: name})
	}
	name, groups := imp.user, slices.Clone(imp.groups)
	if rest, ok := strings.CutPrefix(imp.user, "system:serviceaccount:"); ok && strings.Count(rest, ":") == 1 {
		ns, sa, _ := strings.Cut(rest, ":")
		check("", "serviceaccounts", "", ns, sa)
		if len(imp.groups) == 0 {
			// A service account's groups follow from its name.
			groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns}
		}
	} else {
		check("", "users", "", "", imp.user)
	}
	for _, g := range imp.groups {
		check("", "groups", "", "", g)
	}
	if imp.uid != "" {
		check("authentication.k8s.io", "uids", "", "", imp.uid)
	}
	for _, k := range sortedExtraKeys(imp.extra) {
		for _, v := range imp.extra[k] {
			check("authentication.k8s.io", "userextras", k, "", v)
		}
	}
	for _, a := range checks {
		d, reason, err := s.authz.authorize(ctx, a)
		if d == authz.Allow {
			continue
		}
		if err != nil {
			return authn.User{}, apierrors.NewInternalError(err)
		}
		return authn.User{}, forbidden(a, reason)
	}
	if name == authn.UserAnonymous {
		if !slices.Contains(groups, authn.GroupUnauthenticated) {
			groups = append(groups, authn.GroupUnauthenticated)
		}
	} else if !slices.Contains(groups, authn.GroupAuthenticated) && !slices.Contains(groups, authn.GroupUnauthenticated) {
		groups = append(groups, authn.GroupAuthenticated)
	}
	return authn.User{Name: name, UID: imp.uid, Groups: groups, Extra: imp.extra}, nil
}

func impersonationParts(imp impersonation) []string {
	var parts []string
	for _, g := range imp.groups {
		parts = append(parts, fmt.Sprintf("%s=%s", "groups", g))
	}
	if imp.uid != "" {
		parts = append(parts, "uid="+imp.uid)
	}
	for _, k := range sortedExtraKeys(imp.extra) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, imp.extra[k]))
	}
	return parts
}

func sortedExtraKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dropImpersonationHeaders removes the Impersonate-* headers once used,
// so that nothing further (a proxied kubelet) acts on them again.
func dropImpersonationHeaders(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "Impersonate-") {
			h.Del(k)
		}
	}
}
