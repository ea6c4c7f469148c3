// Package bolt is the embedded storage backend: storage.Interface on one
// bbolt file, with a single committing goroutine that groups concurrent
// writes into one fsync, an in-memory fan-out of committed events to
// watchers, and background compaction. README.md explains the file layout.
package bolt
