package certificates

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilduration "k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/apiserver/registry"
	"github.com/tinykube/tinykube/pki"
)

var certificatesV1 = certificatesv1.SchemeGroupVersion

// Group serves certificates.k8s.io/v1.
type Group struct{}

// Resources are certificates.k8s.io/v1
// certificatesigningrequests as upstream serves it: the requestor's
// identity is recorded by the server, the spec never changes after create,
// Approved and Denied conditions are written only through /approval, and
// the certificate only through /status, once.
func (Group) Resources(cfg registry.Config) []*registry.Resource {
	return []*registry.Resource{{GVR: certificatesV1.WithResource("certificatesigningrequests"), Kind: "CertificateSigningRequest",
		Singular: "certificatesigningrequest", ShortNames: []string{"csr"},
		Subresources: []string{"status", "approval"},
		// Upstream does not care what certificate requests are called.
		NameValidation: func(string, bool) []string { return nil },
		PrepareForCreate: func(obj runtime.Object) {
			csr := obj.(*certificatesv1.CertificateSigningRequest)
			csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups, csr.Spec.Extra = "", "", nil, nil
			// Nobody creates a pre-approved request.
			csr.Status = certificatesv1.CertificateSigningRequestStatus{}
		},
		Validate: func(obj, _ runtime.Object) field.ErrorList {
			return validateCSR(obj.(*certificatesv1.CertificateSigningRequest))
		},
		Admit: admitCSR,
		UpdateThrough: func(subresource string, obj, old runtime.Object) field.ErrorList {
			return updateCSRThrough(subresource, obj, old, cfg.Now())
		},
		Table: csrTable(),
	}}
}

// admitCSR records who asked, on create: the authenticated user the
// request came from, as upstream's PrepareForCreate does. The signer and
// the approver decide on this identity, never on the request's content.
func admitCSR(ctx context.Context, obj, old runtime.Object, _ bool) error {
	if old != nil {
		return nil
	}
	u, ok := authn.UserFrom(ctx)
	if !ok {
		return nil
	}
	csr := obj.(*certificatesv1.CertificateSigningRequest)
	csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups = u.Name, u.UID, slices.Clone(u.Groups)
	return nil
}

// updateCSRThrough keeps what a write through subresource may not change
// and checks the rest (now stamps new conditions), as upstream's three strategies: the main resource
// changes metadata only, /status the conditions other than Approved and
// Denied and a certificate not set before, /approval the conditions only.
func updateCSRThrough(subresource string, obj, old runtime.Object, now time.Time) field.ErrorList {
	csr, prev := obj.(*certificatesv1.CertificateSigningRequest), old.(*certificatesv1.CertificateSigningRequest)
	csr.Spec = prev.Spec
	switch subresource {
	case "":
		csr.Status = prev.Status
		return nil
	case "status":
		// Changed instances are silently kept as they were; adding or
		// removing one is refused below.
		preserveConditions(csr, prev, certificatesv1.CertificateApproved)
		preserveConditions(csr, prev, certificatesv1.CertificateDenied)
	case "approval":
		csr.Status.Certificate = prev.Status.Certificate
	}
	stampConditions(csr, prev, now)

	var errs field.ErrorList
	conditions := field.NewPath("status", "conditions")
	for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed} {
		if len(conditionsOf(csr, t)) < len(conditionsOf(prev, t)) {
			errs = append(errs, field.Forbidden(conditions, fmt.Sprintf("updates may not remove a condition of type %q", t)))
		}
	}
	if subresource != "approval" {
		for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
			now, was := conditionsOf(csr, t), conditionsOf(prev, t)
			switch {
			case len(now) < len(was):
			case len(now) > len(was):
				errs = append(errs, field.Forbidden(conditions, fmt.Sprintf("updates may not add a condition of type %q", t)))
			case !apiequality.Semantic.DeepEqual(now, was):
				errs = append(errs, field.Forbidden(conditions, fmt.Sprintf("updates may not modify a condition of type %q", t)))
			}
		}
	}
	if !bytes.Equal(csr.Status.Certificate, prev.Status.Certificate) {
		certificate := field.NewPath("status", "certificate")
		switch {
		case subresource != "status":
			errs = append(errs, field.Forbidden(certificate, "updates may not set certificate content"))
		case len(prev.Status.Certificate) > 0:
			errs = append(errs, field.Forbidden(certificate, "updates may not modify existing certificate content"))
		}
	}
	return errs
}

// preserveConditions puts back prev's conditions of type t when csr has as
// many of them.
func preserveConditions(csr, prev *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) {
	was := conditionsOf(prev, t)
	if len(conditionsOf(csr, t)) != len(was) {
		return
	}
	i := 0
	for j := range csr.Status.Conditions {
		if csr.Status.Conditions[j].Type == t {
			csr.Status.Conditions[j] = was[i]
			i++
		}
	}
}

// stampConditions fills the conditions' times the client left empty:
// lastUpdateTime now, lastTransitionTime from the same condition before
// when its status did not change, else now.
func stampConditions(csr, prev *certificatesv1.CertificateSigningRequest, now time.Time) {
	t := metav1.NewTime(now)
	for i := range csr.Status.Conditions {
		c := &csr.Status.Conditions[i]
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = t
		}
		if !c.LastTransitionTime.IsZero() {
			continue
		}
		c.LastTransitionTime = t
		for _, p := range prev.Status.Conditions {
			if p.Type == c.Type && p.Status == c.Status && !p.LastTransitionTime.IsZero() {
				c.LastTransitionTime = p.LastTransitionTime
				break
			}
		}
	}
}

func conditionsOf(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []certificatesv1.CertificateSigningRequestCondition {
	var out []certificatesv1.CertificateSigningRequestCondition
	for _, c := range csr.Status.Conditions {
		if c.Type == t {
			out = append(out, c)
		}
	}
	return out
}

// csrUsages is every key usage upstream accepts.
var csrUsages = []string{
	string(certificatesv1.UsageAny), string(certificatesv1.UsageCRLSign), string(certificatesv1.UsageCertSign),
	string(certificatesv1.UsageClientAuth), string(certificatesv1.UsageCodeSigning), string(certificatesv1.UsageContentCommitment),
	string(certificatesv1.UsageDataEncipherment), string(certificatesv1.UsageDecipherOnly), string(certificatesv1.UsageDigitalSignature),
	string(certificatesv1.UsageEmailProtection), string(certificatesv1.UsageEncipherOnly), string(certificatesv1.UsageIPsecEndSystem),
	string(certificatesv1.UsageIPsecTunnel), string(certificatesv1.UsageIPsecUser), string(certificatesv1.UsageKeyAgreement),
	string(certificatesv1.UsageKeyEncipherment), string(certificatesv1.UsageMicrosoftSGC), string(certificatesv1.UsageNetscapeSGC),
	string(certificatesv1.UsageOCSPSigning), string(certificatesv1.UsageSMIME), string(certificatesv1.UsageServerAuth),
	string(certificatesv1.UsageSigning), string(certificatesv1.UsageTimestamping),
}

// validateCSR is upstream's validation of a request and its status, with
// its messages.
func validateCSR(csr *certificatesv1.CertificateSigningRequest) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	// A request that does not prove possession of its key is never
	// accepted.
	if _, err := pki.ParseCSR(csr.Spec.Request); err != nil {
		errs = append(errs, field.Invalid(spec.Child("request"), csr.Spec.Request, err.Error()))
	}
	if len(csr.Spec.Usages) == 0 {
		errs = append(errs, field.Required(spec.Child("usages"), ""))
	}
	seen := map[certificatesv1.KeyUsage]bool{}
	for i, u := range csr.Spec.Usages {
		if !slices.Contains(csrUsages, string(u)) {
			errs = append(errs, field.NotSupported(spec.Child("usages").Index(i), u, csrUsages))
		}
		if seen[u] {
			errs = append(errs, field.Duplicate(spec.Child("usages").Index(i), u))
		}
		seen[u] = true
	}
	if csr.Spec.SignerName == "kubernetes.io/legacy-unknown" {
		errs = append(errs, field.Invalid(spec.Child("signerName"), csr.Spec.SignerName, "the legacy signerName is not allowed via this API version"))
	} else {
		errs = append(errs, validateSignerName(spec.Child("signerName"), csr.Spec.SignerName)...)
	}
	if es := csr.Spec.ExpirationSeconds; es != nil && *es < 600 {
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), *es, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	errs = append(errs, validateCSRConditions(field.NewPath("status", "conditions"), csr.Status.Conditions)...)
	if err := checkCertificatePEM(csr.Status.Certificate); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("status", "certificate"), "<certificate data>", err.Error()))
	}
	return errs
}

// checkCertificatePEM accepts empty data or CERTIFICATE PEM blocks only.
func checkCertificatePEM(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	blocks := 0
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("only CERTIFICATE PEM blocks are allowed, found %q", block.Type)
		}
		if len(block.Headers) != 0 {
			return errors.New("no PEM block headers are permitted")
		}
		certs, err := x509.ParseCertificates(block.Bytes)
		if err != nil {
			return err
		}
		if len(certs) == 0 {
			return errors.New("found CERTIFICATE PEM block containing 0 certificates")
		}
		blocks++
		data = rest
	}
	if blocks == 0 {
		return errors.New("must contain at least one CERTIFICATE PEM block")
	}
	return nil
}

func validateCSRConditions(path *field.Path, conditions []certificatesv1.CertificateSigningRequestCondition) field.ErrorList {
	var errs field.ErrorList
	seen := map[certificatesv1.RequestConditionType]bool{}
	var approved, denied bool
	for i, c := range conditions {
		p := path.Index(i)
		if c.Type == "" {
			errs = append(errs, field.Required(p.Child("type"), ""))
		}
		allowed := []string{string(corev1.ConditionFalse), string(corev1.ConditionTrue), string(corev1.ConditionUnknown)}
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			allowed = []string{string(corev1.ConditionTrue)}
		}
		switch {
		case c.Status == "":
			errs = append(errs, field.Required(p.Child("status"), ""))
		case !slices.Contains(allowed, string(c.Status)):
			errs = append(errs, field.NotSupported(p.Child("status"), c.Status, allowed))
		}
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
			if denied {
				errs = append(errs, field.Invalid(p.Child("type"), c.Type, "Approved and Denied conditions are mutually exclusive"))
			}
		case certificatesv1.CertificateDenied:
			denied = true
			if approved {
				errs = append(errs, field.Invalid(p.Child("type"), c.Type, "Approved and Denied conditions are mutually exclusive"))
			}
		}
		if seen[c.Type] {
			errs = append(errs, field.Duplicate(p.Child("type"), c.Type))
		}
		seen[c.Type] = true
	}
	return errs
}

// validateSignerName is upstream's: a domain of at least two DNS labels, a
// slash, and a path of DNS subdomain characters.
func validateSignerName(path *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	domain, rest, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(rest, "/") {
		return field.ErrorList{field.Invalid(path, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")}
	}
	var errs field.ErrorList
	if len(domain) > validation.DNS1123SubdomainMaxLength {
		errs = append(errs, field.TooLong(path, domain, validation.DNS1123SubdomainMaxLength))
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if msgs := validation.IsDNS1123Label(l); len(msgs) > 0 {
			for _, m := range msgs {
				errs = append(errs, field.Invalid(path, domain, fmt.Sprintf("validating label %q: %s", l, m)))
			}
			break
		}
	}
	if len(labels) < 2 {
		errs = append(errs, field.Invalid(path, domain, "should be a domain with at least two segments separated by dots"))
	}
	maxPath := validation.DNS1123SubdomainMaxLength + validation.DNS1123LabelMaxLength + 1
	if len(rest) > maxPath {
		errs = append(errs, field.TooLong(path, rest, maxPath))
	}
	for _, m := range validation.IsDNS1123Subdomain(strings.ToLower(rest)) {
		errs = append(errs, field.Invalid(path, rest, "validating path: "+m))
	}
	return errs
}

// csrTable has upstream's `kubectl get csr` columns.
func csrTable() *registry.Table {
	spec := certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()
	return &registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.NameColumn, registry.AgeColumn,
			registry.Column("SignerName", "string", 0, spec["signerName"]),
			registry.Column("Requestor", "string", 0, "Name of the user which made this request."),
			registry.Column("RequestedDuration", "string", 0, spec["expirationSeconds"]),
			registry.Column("Condition", "string", 0, "State of the signing request.")},
		Cells: func(obj runtime.Object, now time.Time) []any {
			csr := obj.(*certificatesv1.CertificateSigningRequest)
			signer, duration := registry.None, registry.None
			if csr.Spec.SignerName != "" {
				signer = csr.Spec.SignerName
			}
			if es := csr.Spec.ExpirationSeconds; es != nil {
				duration = utilduration.HumanDuration(time.Duration(*es) * time.Second)
			}
			return []any{csr.Name, registry.Age(csr.CreationTimestamp, now), signer, csr.Spec.Username, duration, csrCondition(csr)}
		},
	}
}

// csrCondition is the Condition cell: Pending, Approved or Denied, then
// Failed and Issued when they apply.
func csrCondition(csr *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	state := "Pending"
	switch {
	case denied:
		state = "Denied"
	case approved:
		state = "Approved"
	}
	if failed {
		state += ",Failed"
	}
	if len(csr.Status.Certificate) > 0 {
		state += ",Issued"
	}
	return state
}
