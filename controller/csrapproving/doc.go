// Package csrapproving owns the approver of kubelet certificate signing
// requests, as upstream's
// certificatesigningrequest-approving-controller.
//
// It approves a kubernetes.io/kube-apiserver-client-kubelet request for
// CN=system:node:NAME, O=system:nodes with the kubelet's usages when a
// SubjectAccessReview says its requestor may create
// certificatesigningrequests/selfnodeclient (the node renewing its own
// certificate) or certificatesigningrequests/nodeclient (a host joining
// with a bootstrap token). The default RBAC policy grants these to
// system:nodes and system:bootstrappers, as kubeadm does.
//
// Unlike upstream, it also approves kubernetes.io/kubelet-serving requests
// by the same permissions when the request names only the node (DNS name
// NAME) and addresses that could be a node's (not loopback, unspecified,
// multicast or link-local): k3s hands out kubelet serving certificates on
// a join token alone, and a joining node has no one to approve its
// request by hand. Whoever may become the node may serve as it.
//
// Requests it does not recognise, or whose requestor lacks the
// permission, are left for a person to approve or deny (`kubectl
// certificate approve`).
package csrapproving
