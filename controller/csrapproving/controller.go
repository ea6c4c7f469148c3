package csrapproving

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	authorizationv1 "k8s.io/api/authorization/v1"
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

// Name is the controller's name, as upstream's.
const Name = "certificatesigningrequest-approving-controller"

// Config wires the approver.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// Clock is for tests; nil is the real clock.
	Clock clock.PassiveClock
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller approves kubelet certificate requests.
type Controller struct {
	logger  *slog.Logger
	workers int
	client  kubernetes.Interface
	clock   clock.PassiveClock
	csrs    certificateslisters.CertificateSigningRequestLister
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
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
		logger: cfg.Logger, workers: cfg.Workers,
		client: cfg.Client,
		clock:  cfg.Clock,
		csrs:   inf.Lister(),
		synced: inf.Informer().HasSynced,
		queue:  workloop.NewQueue[string]("csrapproving", nil),
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
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Loop[string]{Logger: c.logger, Workers: c.workers, KeyKind: "csr",
		Queue: c.queue, Synced: []cache.InformerSynced{c.synced}, Sync: c.sync}.Run(ctx)
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
	message, ok, err := c.decide(ctx, csr)
	if err != nil || !ok {
		return err
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

// recognizer is one kind of request the approver knows and the
// permission its requestor needs, as upstream's: create on
// certificatesigningrequests/<subresource>, asked with a
// SubjectAccessReview.
type recognizer struct {
	recognize   func(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest) bool
	subresource string
	message     string
}

var recognizers = []recognizer{
	{func(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
		return isNodeClient(csr, req) && csr.Spec.Username == req.Subject.CommonName
	}, "selfnodeclient", "Auto approving self kubelet client certificate after SubjectAccessReview."},
	{isNodeClient, "nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview."},
	// Not upstream: a node's serving certificate, for whoever may have
	// its client certificate (see the package doc).
	{func(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
		return isNodeServing(csr, req) && csr.Spec.Username == req.Subject.CommonName
	}, "selfnodeclient", "Auto approving self kubelet serving certificate after SubjectAccessReview."},
	{isNodeServing, "nodeclient", "Auto approving kubelet serving certificate after SubjectAccessReview."},
}

func isNodeClient(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
	return csr.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName && pki.CheckKubeletClientCSR(req, csr.Spec.Usages) == nil
}

func isNodeServing(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
	return csr.Spec.SignerName == certificatesv1.KubeletServingSignerName && pki.CheckKubeletServingCSR(req, csr.Spec.Usages) == nil &&
		pki.CheckNodeServingNames(req) == nil
}

// decide returns the approval message when a recognizer knows csr and its
// requestor has the recognizer's permission.
func (c *Controller) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (string, bool, error) {
	req, err := pki.ParseCSR(csr.Spec.Request)
	if err != nil {
		return "", false, nil
	}
	for _, r := range recognizers {
		if !r.recognize(csr, req) {
			continue
		}
		allowed, err := c.mayCreate(ctx, csr, r.subresource)
		if err != nil {
			return "", false, err
		}
		if allowed {
			return r.message, true, nil
		}
	}
	return "", false, nil
}

// mayCreate asks the API server whether the requestor may create
// certificatesigningrequests/subresource.
func (c *Controller) mayCreate(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, subresource string) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := c.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: csr.Spec.Username, UID: csr.Spec.UID, Groups: csr.Spec.Groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: certificatesv1.GroupName, Version: "*",
				Resource: "certificatesigningrequests", Subresource: subresource, Verb: "create"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("subject access review for %s: %w", csr.Spec.Username, err)
	}
	return sar.Status.Allowed, nil
}
