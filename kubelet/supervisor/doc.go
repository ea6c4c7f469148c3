// Package supervisor runs tinykube's own containerd as a child process: it
// writes its config with root, state and socket under the data dir, starts
// it, waits until it answers on its socket, restarts it when it dies and
// stops it on shutdown. Running containers survive a containerd restart
// because their shims are separate processes.
//
// It also checks the host for what the node needs (containerd, its runc shim,
// runc) so a missing package fails start with one line naming it.
package supervisor
