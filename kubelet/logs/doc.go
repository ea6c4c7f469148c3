// Package logs reads container logs in the CRI format the kubelet writes
// ("TIMESTAMP STREAM P|F MESSAGE" per line) the way `kubectl logs` asks:
// follow, tail, since, timestamps and a byte limit.
package logs
