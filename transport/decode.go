package transport

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"go.etcd.io/raft/v3/raftpb"
)

// raftpb messages are proto2 with pointer scalars, so proto.Unmarshal makes
// one allocation per set field (a MsgApp with one entry: 11). decodeMessage
// is a fast path for the messages raft exchanges all the time: it checks
// the encoding in one pass and then builds the message with every scalar
// in one block, all entries in one block and all entry data in one buffer
// (a heartbeat: 1 allocation; a MsgApp with entries: 4). Anything unusual
// (snapshot, responses, unknown fields or enum values, wire type
// mismatches, malformed input) goes to proto.Unmarshal, so the result is
// always what proto.Unmarshal would produce.

// Field numbers of raftpb.Message and raftpb.Entry.
const (
	fMsgType       = 1
	fMsgTo         = 2
	fMsgFrom       = 3
	fMsgTerm       = 4
	fMsgLogTerm    = 5
	fMsgIndex      = 6
	fMsgEntries    = 7
	fMsgCommit     = 8
	fMsgReject     = 10
	fMsgRejectHint = 11
	fMsgContext    = 12
	fMsgVote       = 13

	fEntType  = 1
	fEntTerm  = 2
	fEntIndex = 3
	fEntData  = 4
)

// msgBox holds a decoded message and the values its pointer fields point
// to, so the whole message is one allocation.
type msgBox struct {
	m      raftpb.Message
	typ    raftpb.MessageType
	u      [fMsgVote + 1]uint64 // scalar values by field number
	reject bool
}

// entryBox is an entry and the values its pointer fields point to.
type entryBox struct {
	e     raftpb.Entry
	typ   raftpb.EntryType
	term  uint64
	index uint64
}

// msgShape is what the checking pass learned about an encoded message.
type msgShape struct {
	entries  int
	dataLen  int  // total bytes of entry Data and Context
	anyBytes bool // some bytes field is present (may be empty)
}

// decodeMessage returns a new message decoded from b; nothing aliases b.
func decodeMessage(b []byte) (*raftpb.Message, error) {
	shape, ok := checkMessage(b)
	if !ok {
		m := new(raftpb.Message)
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, err
		}
		return m, nil
	}
	return buildMessage(b, shape), nil
}

// checkMessage reports whether b is a message the fast path handles.
func checkMessage(b []byte) (msgShape, bool) {
	var s msgShape
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, false
		}
		b = b[n:]
		switch {
		case num == fMsgEntries && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || !checkEntry(v, &s) {
				return s, false
			}
			s.entries++
			b = b[n:]
		case num == fMsgContext && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return s, false
			}
			s.dataLen += len(v)
			s.anyBytes = true
			b = b[n:]
		case isMsgScalar(num) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || (num == fMsgType && !knownMessageType(v)) {
				return s, false
			}
			b = b[n:]
		default:
			return s, false
		}
	}
	return s, true
}

func isMsgScalar(num protowire.Number) bool {
	switch num {
	case fMsgType, fMsgTo, fMsgFrom, fMsgTerm, fMsgLogTerm, fMsgIndex,
		fMsgCommit, fMsgReject, fMsgRejectHint, fMsgVote:
		return true
	}
	return false
}

// knownMessageType: proto2 enums are closed, an unknown value would be kept
// as an unknown field.
func knownMessageType(v uint64) bool {
	_, ok := raftpb.MessageType_name[int32(v)]
	return ok && v <= 1<<31-1
}

func knownEntryType(v uint64) bool {
	_, ok := raftpb.EntryType_name[int32(v)]
	return ok && v <= 1<<31-1
}

func checkEntry(b []byte, s *msgShape) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == fEntData && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			s.dataLen += len(v)
			s.anyBytes = true
			b = b[n:]
		case (num == fEntType || num == fEntTerm || num == fEntIndex) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || (num == fEntType && !knownEntryType(v)) {
				return false
			}
			b = b[n:]
		default:
			return false
		}
	}
	return true
}

// arena hands out the pre-sized blocks buildMessage fills.
type arena struct {
	data    []byte // shared by Context and all entry Data
	entries []entryBox
}

// take copies v into the shared buffer; the result cannot grow into a
// neighbour and is non-nil even when empty (proto2 presence).
func (a *arena) take(v []byte) []byte {
	n := copy(a.data, v)
	out := a.data[:n:n]
	a.data = a.data[n:]
	return out
}

// buildMessage decodes b, which checkMessage accepted with shape s.
func buildMessage(b []byte, s msgShape) *raftpb.Message {
	box := new(msgBox)
	m := &box.m
	var a arena
	if s.anyBytes {
		a.data = make([]byte, s.dataLen)
	}
	if s.entries > 0 {
		a.entries = make([]entryBox, s.entries)
		m.Entries = make([]*raftpb.Entry, 0, s.entries)
	}
	for len(b) > 0 {
		num, _, n := protowire.ConsumeTag(b)
		b = b[n:]
		if num == fMsgEntries || num == fMsgContext {
			v, n := protowire.ConsumeBytes(b)
			b = b[n:]
			if num == fMsgContext {
				m.Context = a.take(v)
			} else {
				m.Entries = append(m.Entries, buildEntry(v, &a))
			}
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		b = b[n:]
		setMsgScalar(box, num, v)
	}
	return m
}

func setMsgScalar(box *msgBox, num protowire.Number, v uint64) {
	m := &box.m
	switch num {
	case fMsgType:
		box.typ = raftpb.MessageType(int32(v))
		m.Type = &box.typ
		return
	case fMsgReject:
		box.reject = protowire.DecodeBool(v)
		m.Reject = &box.reject
		return
	}
	p := &box.u[num]
	*p = v
	switch num {
	case fMsgTo:
		m.To = p
	case fMsgFrom:
		m.From = p
	case fMsgTerm:
		m.Term = p
	case fMsgLogTerm:
		m.LogTerm = p
	case fMsgIndex:
		m.Index = p
	case fMsgCommit:
		m.Commit = p
	case fMsgRejectHint:
		m.RejectHint = p
	case fMsgVote:
		m.Vote = p
	}
}

func buildEntry(b []byte, a *arena) *raftpb.Entry {
	box := &a.entries[0]
	a.entries = a.entries[1:]
	e := &box.e
	for len(b) > 0 {
		num, _, n := protowire.ConsumeTag(b)
		b = b[n:]
		if num == fEntData {
			v, n := protowire.ConsumeBytes(b)
			b = b[n:]
			e.Data = a.take(v)
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		b = b[n:]
		switch num {
		case fEntType:
			box.typ = raftpb.EntryType(int32(v))
			e.Type = &box.typ
		case fEntTerm:
			box.term = v
			e.Term = &box.term
		case fEntIndex:
			box.index = v
			e.Index = &box.index
		}
	}
	return e
}
