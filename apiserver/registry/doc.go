// Package registry describes what the generic API server serves: one
// Resource per served resource (its group, version and kind, names, scope,
// subresources, strategy hooks and table columns) and the Group interface
// through which each API group's package hands its resources to the server.
//
// It owns no resource's rules and no HTTP: those live in the group packages
// under it (core, apps, batch, ...) and in the generic server (package
// apiserver). It imports neither, so every group package can import it.
package registry
