package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/record"
)

func TestDeleteRecords(t *testing.T) {
	h, store := newTestHandler(t)
	topic, _ := store.CreateTopic("t", 1, nil)
	for range 3 {
		produce(t, h, store, 9, "t", testBatch(t, 2, 10, record.None))
	}
	del := func(v int16, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.SetVersion(v)
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return roundTrip(t, h, req).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
	}
	if p := del(0, 3); p.ErrorCode != 0 || p.LowWatermark != 3 {
		t.Fatalf("v0 delete to 3: %+v", p)
	}
	if p := del(2, 7); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("past the high watermark: %+v", p)
	}
	if p := del(2, -1); p.ErrorCode != 0 || p.LowWatermark != 6 {
		t.Fatalf("-1 (high watermark): %+v", p)
	}
	resp := fetch(t, h, fetchReq(11, "t", topic.ID, 0, 0, 1, 1<<20)).Topics[0].Partitions[0]
	if resp.ErrorCode != kerr.OffsetOutOfRange.Code || resp.LogStartOffset != 6 {
		t.Fatalf("fetch below the new start: code %d start %d", resp.ErrorCode, resp.LogStartOffset)
	}
}
