package protocol

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/netpoll"
	"github.com/rocketkafka/broker/record"
)

// Produce (key 0), v3-v13: v3 is the first version whose records are
// magic-2 batches; v13 names topics by ID. Each partition's records must be
// exactly one batch, as Apache Kafka requires of v3+.
func init() { register(api{key: 0, min: 3, max: 13, serve: serveProduce}) }

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
	var durableEnd int64 = -1
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
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case ackCode != 0:
				sp.ErrorCode = ackCode
			case !nameOK:
				sp.ErrorCode = kerr.UnknownTopicID.Code
			default:
				res, err := h.appendBatch(name, rp.Partition, rp.Records)
				sp.ErrorCode = errorCode(err)
				if err != nil {
					msg := err.Error()
					sp.ErrorMessage = &msg
				} else {
					sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
					durableEnd = max(durableEnd, res.End)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == -1 && durableEnd >= 0 {
		if err := h.store.WaitDurable(ctx, durableEnd); err != nil {
			// Written but not durable: the client must not take it as acknowledged.
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if sp := &resp.Topics[i].Partitions[j]; sp.ErrorCode == 0 {
						sp.ErrorCode = kerr.KafkaStorageError.Code
					}
				}
			}
		}
	}
	return resp
}

// appendBatch appends one partition's records, which must be one batch.
// Bytes past the first batch's length are a second batch to Kafka
// (INVALID_RECORD) once the first checks out; a first batch that fails
// its checks is reported as such (a short length usually breaks its CRC).
func (h *Handler) appendBatch(topic string, partition int32, records []byte) (log.AppendResult, error) {
	p, err := h.store.Partition(topic, partition)
	if err != nil {
		return log.AppendResult{}, err
	}
	if hdr, err := record.ParseHeader(records); err == nil && hdr.Size() >= record.HeaderSize && hdr.Size() < len(records) {
		if _, err := record.Validate(records[:hdr.Size()]); err != nil {
			return log.AppendResult{}, err
		}
		return log.AppendResult{}, fmt.Errorf("%w: a produce request carries exactly one batch per partition", record.ErrInvalidRecord)
	}
	return p.Append(records)
}
