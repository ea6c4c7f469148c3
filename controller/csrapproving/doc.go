// Package csrapproving owns the approver of kubelet certificate signing
// requests, as upstream's csrapproving controller.
//
// It approves a kubernetes.io/kube-apiserver-client-kubelet request for
// CN=system:node:NAME, O=system:nodes with the kubelet's usages when its
// requestor may ask for it: anyone in system:bootstrappers (a host joining
// with a bootstrap token: upstream's nodeclient), or the node
// system:node:NAME itself renewing (selfnodeclient). Upstream asks a
// SubjectAccessReview whether the requestor may create
// certificatesigningrequests/nodeclient or /selfnodeclient; tinykube has
// no RBAC-backed authorizer yet, so the groups those permissions are bound
// to by kubeadm and k3s (system:bootstrappers, system:nodes) and
// system:masters are checked directly.
//
// Unlike upstream, it also approves kubernetes.io/kubelet-serving requests
// of the same requestors when the request names only the node (DNS name
// NAME) and concrete, non-loopback addresses: k3s hands out kubelet
// serving certificates on a join token alone, and a joining node has no
// one to approve its request by hand.
//
// Requests it does not recognise are left for a person to approve or deny
// (`kubectl certificate approve`).
package csrapproving
