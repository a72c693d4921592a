package log

import (
	"math"

	"github.com/rocketkafka/broker/record"
)

// producerBatches is how many recent batches per producer and partition are
// remembered for duplicate detection; Kafka clients keep at most five
// requests in flight when idempotent, so five is enough.
const producerBatches = 5

// batchMeta remembers where one idempotent batch landed.
type batchMeta struct {
	FirstSeq   int32 `json:"first_seq"`
	LastSeq    int32 `json:"last_seq"`
	BaseOffset int64 `json:"base_offset"`
}

// producerState is an idempotent producer's state in one partition.
type producerState struct {
	Epoch   int16       `json:"epoch"`
	Batches []batchMeta `json:"batches"` // oldest first, at most producerBatches
}

// lastSeq is the sequence of the last record appended in this epoch.
func (s *producerState) lastSeq() int32 {
	return s.Batches[len(s.Batches)-1].LastSeq
}

// batchLastSeq is the sequence of a batch's last record; sequences wrap
// at MaxInt32 back to zero.
func batchLastSeq(h record.Header) int32 {
	last := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if last > math.MaxInt32 {
		last -= math.MaxInt32 + 1
	}
	return int32(last)
}

// checkSequence decides whether batch h from a known producer may be
// appended, following Apache Kafka's rules: an older epoch is fenced, a
// duplicate of a remembered batch returns that batch's offset, a new epoch
// starts at sequence 0, and otherwise the sequence must follow the last one.
// A producer with no state (new, or its state expired) may start anywhere.
func checkSequence(s *producerState, h record.Header) (dupOffset int64, dup bool, err error) {
	if s == nil || len(s.Batches) == 0 {
		return 0, false, nil
	}
	switch {
	case h.ProducerEpoch < s.Epoch:
		return 0, false, ErrInvalidProducerEpoch
	case h.ProducerEpoch > s.Epoch:
		if h.BaseSequence != 0 {
			return 0, false, ErrOutOfOrderSequence
		}
		return 0, false, nil
	}
	last := batchLastSeq(h)
	for _, b := range s.Batches {
		if b.FirstSeq == h.BaseSequence && b.LastSeq == last {
			return b.BaseOffset, true, nil
		}
	}
	prev := s.lastSeq()
	if h.BaseSequence != prev+1 && !(prev == math.MaxInt32 && h.BaseSequence == 0) {
		return 0, false, ErrOutOfOrderSequence
	}
	return 0, false, nil
}

// record remembers an appended batch, resetting on a new epoch.
func (s *producerState) record(h record.Header, baseOffset int64) {
	if h.ProducerEpoch != s.Epoch {
		s.Epoch = h.ProducerEpoch
		s.Batches = s.Batches[:0]
	}
	if len(s.Batches) == producerBatches {
		copy(s.Batches, s.Batches[1:])
		s.Batches = s.Batches[:producerBatches-1]
	}
	s.Batches = append(s.Batches, batchMeta{FirstSeq: h.BaseSequence, LastSeq: batchLastSeq(h), BaseOffset: baseOffset})
}
