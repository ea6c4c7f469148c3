// Package storage owns the versioned key-value store under the API server:
// the Interface every backend implements, its errors, and helpers built on
// the Interface alone (GuaranteedUpdate, continue tokens). Backends live in
// subpackages (bolt, the embedded default); storagetest is the conformance
// suite they all pass. The store knows nothing of object types or JSON.
package storage
