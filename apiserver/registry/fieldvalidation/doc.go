// Package fieldvalidation holds the small field checks several API groups
// share (names, labels, dotted field paths), each returning a
// field.ErrorList with upstream's messages. Group specific rules stay in
// the group's package.
package fieldvalidation
