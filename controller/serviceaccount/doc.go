// Package serviceaccount owns the serviceaccount controller: every active
// namespace has a ServiceAccount named "default", recreated when deleted,
// as upstream's serviceaccount-controller keeps it.
package serviceaccount
