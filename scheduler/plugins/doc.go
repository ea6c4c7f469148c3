// Package plugins holds the in-tree filter and score plugins, one file per
// plugin, and NewRegistry / DefaultProfile that wire them. Filter reasons
// are upstream's strings, because users grep for them.
package plugins
