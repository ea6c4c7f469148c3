package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
)

// What a kubelet's certificate signing requests must look like, with
// upstream's messages: the CSR API's signers and its approver refuse
// anything else.
var (
	errNotSystemNodes     = errors.New("subject organization is not system:nodes")
	errNotSystemNode      = errors.New("subject common name does not begin with system:node:")
	errDNSOrIPSANRequired = errors.New("DNS or IP subjectAltName is required")
	errDNSSANNotAllowed   = errors.New("DNS subjectAltNames are not allowed")
	errEmailSANNotAllowed = errors.New("Email subjectAltNames are not allowed")
	errIPSANNotAllowed    = errors.New("IP subjectAltNames are not allowed")
	errURISANNotAllowed   = errors.New("URI subjectAltNames are not allowed")
)

// ParseCSR reads a PEM PKCS#10 request and checks its signature.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	return req, req.CheckSignature()
}

// NodeNameOf is NAME of a subject system:node:NAME, or "".
func NodeNameOf(req *x509.CertificateRequest) string {
	name, ok := strings.CutPrefix(req.Subject.CommonName, NodeUserPrefix)
	if !ok {
		return ""
	}
	return name
}

// CheckKubeletClientCSR accepts a request for a kubelet's client
// certificate: CN=system:node:NAME, O=system:nodes, no subject alternative
// names, usages digital signature and client auth (plus key encipherment,
// which RSA keys need).
func CheckKubeletClientCSR(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	if !slices.Equal(req.Subject.Organization, []string{NodesGroup}) {
		return errNotSystemNodes
	}
	switch {
	case len(req.DNSNames) > 0:
		return errDNSSANNotAllowed
	case len(req.EmailAddresses) > 0:
		return errEmailSANNotAllowed
	case len(req.IPAddresses) > 0:
		return errIPSANNotAllowed
	case len(req.URIs) > 0:
		return errURISANNotAllowed
	}
	if NodeNameOf(req) == "" {
		return errNotSystemNode
	}
	return checkUsages(usages, certificatesv1.UsageClientAuth)
}

// CheckKubeletServingCSR accepts a request for a kubelet's serving
// certificate: CN=system:node:NAME, O=system:nodes, at least one DNS or IP
// name and no others, usages digital signature and server auth (plus key
// encipherment).
func CheckKubeletServingCSR(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	if !slices.Equal(req.Subject.Organization, []string{NodesGroup}) {
		return errNotSystemNodes
	}
	switch {
	case len(req.DNSNames) == 0 && len(req.IPAddresses) == 0:
		return errDNSOrIPSANRequired
	case len(req.EmailAddresses) > 0:
		return errEmailSANNotAllowed
	case len(req.URIs) > 0:
		return errURISANNotAllowed
	}
	if err := checkUsages(usages, certificatesv1.UsageServerAuth); err != nil {
		return err
	}
	if NodeNameOf(req) == "" {
		return errNotSystemNode
	}
	return nil
}

// CheckNodeServingNames accepts a kubelet serving request that names only
// its node: the DNS name NAME and addresses that could be a node's
// (CheckNodeAddress). A node's serving certificate is signed by the
// cluster CA, so a broader name would let it pass for something else.
func CheckNodeServingNames(req *x509.CertificateRequest) error {
	node := NodeNameOf(req)
	for _, n := range req.DNSNames {
		if n != node {
			return fmt.Errorf("DNS name %q is not the node's name %q", n, node)
		}
	}
	for _, ip := range req.IPAddresses {
		a, _ := netip.AddrFromSlice(ip)
		if err := CheckNodeAddress(a.Unmap()); err != nil {
			return err
		}
	}
	return nil
}

// CheckNodeAddress accepts an address a node's serving certificate may
// name: not loopback, unspecified, multicast or link-local, which would
// name some other host, or every host.
func CheckNodeAddress(ip netip.Addr) error {
	if !ip.IsValid() || ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() {
		return fmt.Errorf("address %s cannot be a node's in its serving certificate (loopback, unspecified, multicast or link-local)", ip)
	}
	return nil
}

// checkUsages accepts exactly {digital signature, ext} or {digital
// signature, key encipherment, ext}, in any order.
func checkUsages(usages []certificatesv1.KeyUsage, ext certificatesv1.KeyUsage) error {
	got := slices.Clone(usages)
	slices.Sort(got)
	got = slices.Compact(got)
	with := []certificatesv1.KeyUsage{ext, certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment}
	without := []certificatesv1.KeyUsage{ext, certificatesv1.UsageDigitalSignature}
	slices.Sort(with)
	slices.Sort(without)
	if len(got) != len(usages) || (!slices.Equal(got, with) && !slices.Equal(got, without)) {
		return fmt.Errorf("usages did not match %v", with)
	}
	return nil
}

// KeyUsages turns the CSR API's usages into the certificate's key usage
// and extended key usages.
func KeyUsages(usages []certificatesv1.KeyUsage) (x509.KeyUsage, []x509.ExtKeyUsage, error) {
	var ku x509.KeyUsage
	var ext []x509.ExtKeyUsage
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature:
			ku |= x509.KeyUsageDigitalSignature
		case certificatesv1.UsageContentCommitment:
			ku |= x509.KeyUsageContentCommitment
		case certificatesv1.UsageKeyEncipherment:
			ku |= x509.KeyUsageKeyEncipherment
		case certificatesv1.UsageKeyAgreement:
			ku |= x509.KeyUsageKeyAgreement
		case certificatesv1.UsageDataEncipherment:
			ku |= x509.KeyUsageDataEncipherment
		case certificatesv1.UsageServerAuth:
			ext = append(ext, x509.ExtKeyUsageServerAuth)
		case certificatesv1.UsageClientAuth:
			ext = append(ext, x509.ExtKeyUsageClientAuth)
		default:
			return 0, nil, fmt.Errorf("unsupported key usage %q", u)
		}
	}
	return ku, ext, nil
}
