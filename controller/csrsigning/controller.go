package csrsigning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

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
const Name = "certificatesigningrequest-signing-controller"

// Durations, as upstream's --cluster-signing-duration and the CSR API's
// floor for spec.expirationSeconds.
const (
	DefaultSigningDuration = 365 * 24 * time.Hour
	minDuration            = 10 * time.Minute
)

// Config wires the signer.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// Signer holds the cluster CA (required).
	Signer *pki.Signer
	// SigningDuration is the longest certificate issued;
	// DefaultSigningDuration when zero.
	SigningDuration time.Duration
	// Clock is for tests; nil is the real clock.
	Clock clock.PassiveClock
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller signs approved kubelet certificate requests.
type Controller struct {
	logger   *slog.Logger
	workers  int
	client   kubernetes.Interface
	signer   *pki.Signer
	duration time.Duration
	clock    clock.PassiveClock
	csrs     certificateslisters.CertificateSigningRequestLister
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New validates cfg and registers the informer; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil || cfg.Signer == nil {
		return nil, errors.New("csrsigning: Client, Informers and Signer are required")
	}
	if cfg.SigningDuration == 0 {
		cfg.SigningDuration = DefaultSigningDuration
	}
	if cfg.SigningDuration < minDuration {
		return nil, fmt.Errorf("csrsigning: signing duration %v is below %v", cfg.SigningDuration, minDuration)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	inf := cfg.Informers.Certificates().V1().CertificateSigningRequests()
	c := &Controller{
		logger: cfg.Logger, workers: cfg.Workers,
		client:   cfg.Client,
		signer:   cfg.Signer,
		duration: cfg.SigningDuration,
		clock:    cfg.Clock,
		csrs:     inf.Lister(),
		synced:   inf.Informer().HasSynced,
		queue:    workloop.NewQueue[string]("csrsigning", nil),
	}
	enqueue := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
			c.queue.Add(csr.Name)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
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

// checks are the signers this controller serves and what their requests
// must look like.
var checks = map[string]func(*certificatesv1.CertificateSigningRequest) error{
	certificatesv1.KubeAPIServerClientKubeletSignerName: func(csr *certificatesv1.CertificateSigningRequest) error {
		req, err := pki.ParseCSR(csr.Spec.Request)
		if err != nil {
			return err
		}
		return pki.CheckKubeletClientCSR(req, csr.Spec.Usages)
	},
	certificatesv1.KubeletServingSignerName: func(csr *certificatesv1.CertificateSigningRequest) error {
		req, err := pki.ParseCSR(csr.Spec.Request)
		if err != nil {
			return err
		}
		return pki.CheckKubeletServingCSR(req, csr.Spec.Usages)
	},
}

// sync issues the certificate of an approved request of our signers that
// has none yet and has not failed.
func (c *Controller) sync(ctx context.Context, name string) error {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	check, ours := checks[csr.Spec.SignerName]
	if !ours || len(csr.Status.Certificate) > 0 || !has(csr, certificatesv1.CertificateApproved) ||
		has(csr, certificatesv1.CertificateDenied) || has(csr, certificatesv1.CertificateFailed) {
		return nil
	}
	csr = csr.DeepCopy()
	if err := check(csr); err != nil {
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue,
			Reason: "SignerValidationFailure", Message: err.Error(), LastUpdateTime: metav1.NewTime(c.clock.Now()),
		})
		return c.updateStatus(ctx, csr)
	}
	req, err := pki.ParseCSR(csr.Spec.Request)
	if err != nil {
		return err
	}
	ku, ext, err := pki.KeyUsages(csr.Spec.Usages)
	if err != nil {
		return err
	}
	cert, err := c.signer.Sign(pki.SignRequest{Request: req, KeyUsage: ku, ExtKeyUsage: ext,
		Lifetime: c.lifetime(csr.Spec.ExpirationSeconds), Now: c.clock.Now()})
	if err != nil {
		return err
	}
	csr.Status.Certificate = cert
	return c.updateStatus(ctx, csr)
}

func (c *Controller) updateStatus(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	_, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// lifetime is what the request asked for, at least minDuration, at most
// the signing duration.
func (c *Controller) lifetime(expirationSeconds *int32) time.Duration {
	if expirationSeconds == nil {
		return c.duration
	}
	return min(max(time.Duration(*expirationSeconds)*time.Second, minDuration), c.duration)
}

func has(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
