// Package admission is the API server's ordered admission chain: after a
// write has been defaulted and validated by its resource's strategy, every
// mutating plugin runs in order, then every validating plugin in order,
// and the first error refuses the write. Deletes and evictions run the
// validating plugins only, against the stored object.
//
// A plugin is a small interface (Name plus Admit and/or Validate) over
// Attributes; it reaches stored objects through ObjectGetter and never
// touches storage itself. The built-in plugins are ServiceAccount,
// NodeRestriction and DefaultTolerationSeconds; the generic server sets
// their order in one place (apiserver/admission.go), which is where
// webhooks, quota, limits and priority go.
package admission
