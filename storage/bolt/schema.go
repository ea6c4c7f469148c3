package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The file holds three buckets; README.md beside this file explains how
// they relate.
var (
	// metaBucket holds the store's counters.
	metaBucket = []byte("meta")
	// indexBucket maps a key to where its latest record lives in the log:
	// indexEntry. Deleted keys stay as tombstones until compaction passes
	// their deletion, so that reads at older revisions still find them.
	indexBucket = []byte("index")
	// logBucket maps a revision (8 bytes, big endian) to the record written
	// at that revision. It is the history that old reads and watches replay.
	logBucket = []byte("log")
)

var (
	metaRevision  = []byte("revision")
	metaCompacted = []byte("compacted")
	metaSchema    = []byte("schema")
)

// schemaVersion changes when the layout changes incompatibly.
const schemaVersion = 1

// initialRevision is the revision of an empty store. Like etcd, the first
// write gets revision 2, so that no object ever has resourceVersion "0" or
// "1", which clients treat specially.
const initialRevision = 1

type recordType byte

const (
	recordCreate recordType = 1
	recordUpdate recordType = 2
	recordDelete recordType = 3
)

// record is one log entry.
type record struct {
	typ            recordType
	createRevision int64
	// prevRevision is the revision of the previous record of the same key
	// (the value an update replaced, or the tombstone a create follows), 0
	// when there is none.
	prevRevision int64
	key          string
	value        []byte
}

func revisionKey(rev int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(rev))
	return b[:]
}

func parseRevisionKey(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b))
}

func (r record) encode() []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(r.key)+len(r.value))
	b = append(b, byte(r.typ))
	b = binary.AppendUvarint(b, uint64(r.createRevision))
	b = binary.AppendUvarint(b, uint64(r.prevRevision))
	b = binary.AppendUvarint(b, uint64(len(r.key)))
	b = append(b, r.key...)
	return append(b, r.value...)
}

var errCorruptRecord = errors.New("bolt: corrupt record")

// decodeRecord parses b. The value aliases b: copy it before the
// transaction ends.
func decodeRecord(b []byte) (record, error) {
	if len(b) < 1 {
		return record{}, errCorruptRecord
	}
	r := record{typ: recordType(b[0])}
	if r.typ < recordCreate || r.typ > recordDelete {
		return record{}, fmt.Errorf("%w: type %d", errCorruptRecord, b[0])
	}
	b = b[1:]
	var fields [3]uint64
	for i := range fields {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return record{}, errCorruptRecord
		}
		fields[i] = v
		b = b[n:]
	}
	r.createRevision, r.prevRevision = int64(fields[0]), int64(fields[1])
	if uint64(len(b)) < fields[2] {
		return record{}, errCorruptRecord
	}
	r.key = string(b[:fields[2]])
	r.value = b[fields[2]:]
	return r, nil
}

// indexEntry is the value of a key in indexBucket.
type indexEntry struct {
	deleted        bool
	createRevision int64
	modRevision    int64
}

const indexEntrySize = 17

func (e indexEntry) encode() []byte {
	b := make([]byte, indexEntrySize)
	if e.deleted {
		b[0] = 1
	}
	binary.BigEndian.PutUint64(b[1:9], uint64(e.createRevision))
	binary.BigEndian.PutUint64(b[9:17], uint64(e.modRevision))
	return b
}

func decodeIndexEntry(b []byte) (indexEntry, error) {
	if len(b) != indexEntrySize || b[0] > 1 {
		return indexEntry{}, fmt.Errorf("bolt: corrupt index entry of %d bytes", len(b))
	}
	return indexEntry{
		deleted:        b[0] == 1,
		createRevision: int64(binary.BigEndian.Uint64(b[1:9])),
		modRevision:    int64(binary.BigEndian.Uint64(b[9:17])),
	}, nil
}

func decodeInt64(b []byte) int64 {
	if len(b) != 8 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(b))
}
