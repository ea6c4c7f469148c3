// Package cache is the scheduler's in-memory view of nodes and of the pods
// counted on them: pods the API reports bound, and pods the scheduler has
// assumed onto a node but whose binding is not yet confirmed, so that
// consecutive decisions see each other.
package cache
