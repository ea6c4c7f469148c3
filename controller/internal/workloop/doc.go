// Package workloop is the one work loop of every controller: it waits for
// the informer caches, runs an optional pre-start hook, then runs workers
// that take one key at a time from a rate-limited queue and sync it.
//
// A sync that fails is retried with the queue's capped exponential
// back-off, for ever or, with MaxRetries, until the key is dropped with one
// log line (upstream's maxRetries). A sync may ask to see its key again
// later, without counting as a failure, by returning RequeueAfter. Each
// sync gets a logger that names its key, through Logger(ctx).
//
// Controllers only build a Loop, add keys to its queue from their event
// handlers, and implement Sync; Get, Done, Forget and AddRateLimited stay
// here.
package workloop
