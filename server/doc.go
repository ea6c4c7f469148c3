// Package server runs a tinykube server: the cluster's keys and
// certificates, the store, the API server and its join endpoints, then
// the controllers and the scheduler as in-process API clients, and, unless
// told otherwise, a node on the same host (package agent). Every part is a
// component of one lifecycle group: each starts once the one before it is
// ready, they stop in reverse, and the first failure stops the server.
// `tinykube server` is flags around Run.
package server
