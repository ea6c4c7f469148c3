// Package scheduler binds pending pods to nodes through the pods/binding
// subresource: a priority queue, filter and score plugins, and a cache of
// nodes and assumed pods. It is an ordinary client-go client of the API.
package scheduler
