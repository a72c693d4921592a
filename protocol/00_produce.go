package protocol

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/group"
	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/netpoll"
	"github.com/rocketkafka/broker/record"
)

// Produce (key 0), v3-v13: v3 is the first version whose records are
// magic-2 batches; v13 names topics by ID. Each partition's records must be
// exactly one batch, as Apache Kafka requires of v3+. Clients may not
// write to the group coordinator's __consumer_offsets
// (INVALID_TOPIC_EXCEPTION, as Kafka answers for internal topics).
// produceKey is Produce's API key.
const produceKey = 0

func init() { register(api{key: produceKey, min: 3, max: 13, serve: serveProduce}) }

func serveProduce(h *Handler, ctx context.Context, r *request) (*netpoll.Response, error) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(r.version)
	if err := req.ReadFrom(r.body); err != nil {
		return nil, fmt.Errorf("%w: Produce v%d: %v", ErrMalformed, r.version, err)
	}
	resp := h.produce(ctx, r, req)
	if req.Acks == 0 {
		// No response is sent; like Kafka, close the connection on an
		// error so the client notices and refreshes its metadata.
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return nil, fmt.Errorf("acks=0 produce to %s[%d] failed: %w", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
				}
			}
		}
		return nil, nil
	}
	return encodeResponse(r, resp), nil
}

func (h *Handler) produce(ctx context.Context, r *request, req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	ackCode := int16(0)
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		ackCode = kerr.InvalidRequiredAcks.Code
	}
	// Every partition's batch goes to the store in one call, so the whole
	// request costs one CommitLog write.
	var appends []log.BatchAppend
	var slots []*kmsg.ProduceResponseTopicPartition
	for i := range req.Topics {
		rt := &req.Topics[i]
		name, nameOK := rt.Topic, true
		if r.version >= 13 {
			var t log.Topic
			t, nameOK = h.store.TopicByID(log.TopicID(rt.TopicID))
			name = t.Name
		}
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			sp.Default()
			sp.Partition = rp.Partition
			var err error
			switch {
			case ackCode != 0:
				sp.ErrorCode = ackCode
				continue
			case !nameOK:
				sp.ErrorCode = kerr.UnknownTopicID.Code
				continue
			case name == group.OffsetsTopic:
				sp.ErrorCode = kerr.InvalidTopicException.Code
				sp.ErrorMessage = kmsg.StringPtr("Cannot append to internal topic " + name)
				continue
			}
			p, err := h.store.Partition(name, rp.Partition)
			if err == nil {
				err = oneBatch(rp.Records)
			}
			if err != nil {
				setProduceError(sp, err)
				continue
			}
			appends = append(appends, log.BatchAppend{Partition: p, Batch: rp.Records})
			slots = append(slots, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	h.store.Append(appends)
	var durableEnd int64 = -1
	for i, a := range appends {
		sp := slots[i]
		if a.Err != nil {
			setProduceError(sp, a.Err)
			continue
		}
		sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = a.Result.BaseOffset, a.Result.LogAppendTime, a.Result.LogStartOffset
		durableEnd = max(durableEnd, a.Result.End)
	}
	if req.Acks == -1 && durableEnd >= 0 {
		// The fsync is coming whatever the connection does; a shutdown
		// cancels ctx to end long polls, but not this wait.
		if err := h.store.WaitDurable(context.WithoutCancel(ctx), durableEnd); err != nil {
			// Written but not durable: the client must not take it as acknowledged.
			for _, sp := range slots {
				if sp.ErrorCode == 0 {
					setProduceError(sp, err)
				}
			}
		}
	}
	return resp
}

func setProduceError(sp *kmsg.ProduceResponseTopicPartition, err error) {
	sp.ErrorCode = errorCode(err)
	sp.ErrorMessage = kmsg.StringPtr(err.Error())
}

// oneBatch checks that a partition's records are one batch. Bytes past
// the first batch's length are a second batch to Kafka (INVALID_RECORD)
// once the first checks out; a first batch that fails its checks is
// reported as such (a short length usually breaks its CRC).
func oneBatch(records []byte) error {
	hdr, err := record.ParseHeader(records)
	if err != nil || hdr.Size() < record.HeaderSize || hdr.Size() >= len(records) {
		return nil // the store's validation reports it
	}
	if _, err := record.Validate(records[:hdr.Size()]); err != nil {
		return err
	}
	return fmt.Errorf("%w: a produce request carries exactly one batch per partition", record.ErrInvalidRecord)
}
