package netlab

import "path/filepath"

// AddBridge creates the Linux bridge name inside ns and sets it up.
func (ns *NS) AddBridge(name string) {
	ns.lab.t.Helper()
	ns.IP("link", "add", name, "type", "bridge")
	ns.IP("link", "set", name, "up")
}

// VethToBridge connects a to the bridge br of hub: a veth pair named aName
// in a and hubName in hub, with hubName a port of br.
func (l *Lab) VethToBridge(a *NS, aName string, hub *NS, hubName, br string) {
	l.t.Helper()
	l.Veth(a, aName, hub, hubName)
	hub.IP("link", "set", hubName, "master", br)
}

// Path is the file that names the namespace, for setns(2) or a netlink
// handle in the namespace (netns.GetFromPath, netlink.NewHandleAt).
func (ns *NS) Path() string { return filepath.Join("/var/run/netns", ns.Name) }
