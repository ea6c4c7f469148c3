package csrapproving

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certificateslisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/internal/workloop"
	"github.com/tinykube/tinykube/pki"
)

// Component is the controller's name, as upstream's.
const Component = "csrapproving"

// The groups whose members may ask for node certificates, as kubeadm and
// k3s bind the nodeclient and selfnodeclient permissions.
const (
	groupBootstrappers = "system:bootstrappers"
	groupNodes         = pki.NodesGroup
	groupMasters       = pki.AdminGroup
)

// Config wires the approver.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// Clock is for tests; nil is the real clock.
	Clock clock.PassiveClock
}

// Controller approves kubelet certificate requests.
type Controller struct {
	client kubernetes.Interface
	clock  clock.PassiveClock
	csrs   certificateslisters.CertificateSigningRequestLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// New validates cfg and registers the informer; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("csrapproving: Client and Informers are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	inf := cfg.Informers.Certificates().V1().CertificateSigningRequests()
	c := &Controller{
		client: cfg.Client,
		clock:  cfg.Clock,
		csrs:   inf.Lister(),
		synced: inf.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: Component}),
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
				c.queue.Add(csr.Name)
			}
		},
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	workloop.Loop{Name: Component, KeyKind: "csr", Queue: c.queue, Synced: []cache.InformerSynced{c.synced}, Sync: c.sync}.Run(ctx, workers)
}

// sync approves a request nobody has decided on yet when a recognizer
// accepts it.
func (c *Controller) sync(ctx context.Context, name string) error {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(csr.Status.Certificate) > 0 || slices.ContainsFunc(csr.Status.Conditions, func(c certificatesv1.CertificateSigningRequestCondition) bool {
		return c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied
	}) {
		return nil
	}
	message, ok := recognize(csr)
	if !ok {
		return nil
	}
	csr = csr.DeepCopy()
	now := metav1.NewTime(c.clock.Now())
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: "AutoApproved", Message: message, LastUpdateTime: now, LastTransitionTime: now,
	})
	_, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// recognize says whether csr is one to approve, and with which message.
func recognize(csr *certificatesv1.CertificateSigningRequest) (string, bool) {
	req, err := pki.ParseCSR(csr.Spec.Request)
	if err != nil {
		return "", false
	}
	self := csr.Spec.Username == req.Subject.CommonName && slices.Contains(csr.Spec.Groups, groupNodes)
	joining := slices.Contains(csr.Spec.Groups, groupBootstrappers) || slices.Contains(csr.Spec.Groups, groupMasters)
	switch csr.Spec.SignerName {
	case certificatesv1.KubeAPIServerClientKubeletSignerName:
		if pki.CheckKubeletClientCSR(req, csr.Spec.Usages) != nil {
			return "", false
		}
		switch {
		case self:
			return "Auto approving self kubelet client certificate after SubjectAccessReview.", true
		case joining:
			return "Auto approving kubelet client certificate after SubjectAccessReview.", true
		}
	case certificatesv1.KubeletServingSignerName:
		if pki.CheckKubeletServingCSR(req, csr.Spec.Usages) != nil || !namesOnlyItsNode(req) {
			return "", false
		}
		if self || joining {
			return fmt.Sprintf("Auto approving kubelet serving certificate of node %s: it names only the node and its addresses.", pki.NodeNameOf(req)), true
		}
	}
	return "", false
}

// namesOnlyItsNode accepts a serving request whose DNS names are the
// node's own name and whose addresses could be a node's: never loopback,
// unspecified, multicast or link-local ones, which would let the
// certificate pass for something else on whatever host checks it.
func namesOnlyItsNode(req *x509.CertificateRequest) bool {
	node := pki.NodeNameOf(req)
	for _, n := range req.DNSNames {
		if n != node {
			return false
		}
	}
	for _, ip := range req.IPAddresses {
		if ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLinkLocalUnicast() {
			return false
		}
	}
	return true
}
