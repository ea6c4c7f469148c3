// Package lifecycle starts a process's components in dependency order and
// stops them in reverse. A component starts only once every component
// started before it is ready (the API before the controllers, the container
// runtime before the kubelet); the first component that fails stops the
// whole group, and the error names it. Server and agent both run their
// parts through one Group.
package lifecycle
