// Package queue is the scheduler's queue of pending pods: an active heap
// ordered by pod priority then age, a backoff heap for pods that failed
// recently, and a set of unschedulable pods that wait for a change in the
// cluster (a node added or changed, a pod deleted) before they are retried.
package queue
