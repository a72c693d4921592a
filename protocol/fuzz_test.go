package protocol

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/record"
)

// FuzzRequest feeds arbitrary frames to the request decoder and every
// handler: nothing may panic, and bad input may only fail the request
// (closing the connection) or be answered with error codes. Whatever the
// input, what the store serves afterwards still validates.
func FuzzRequest(f *testing.F) {
	batch := testBatch(f, 2, 10, record.Gzip)
	seeds := []kmsg.Request{
		produceReq(9, "fuzz", log.TopicID{}, 0, -1, batch),
		produceReq(13, "", log.TopicID{1}, 0, 1, batch),
		fetchReq(4, "fuzz", log.TopicID{}, 0, 0, 1, 1<<20),
		fetchReq(18, "", log.TopicID{1}, 0, 0, 1, 1<<20),
	}
	join := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	join.Group, join.MemberID, join.RebalanceTimeoutMillis = "g", "m", 1000
	join.SubscribedTopicNames, join.SubscribedTopicRegex = []string{"fuzz"}, kmsg.StringPtr("f.*")
	join.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	join.SetVersion(1)
	describe := kmsg.NewPtrConsumerGroupDescribeRequest()
	describe.Groups = []string{"g", ""}
	session := fetchReq(13, "", log.TopicID{1}, 0, 0, 1, 1<<20)
	session.SessionEpoch = 0
	incremental := fetchReq(13, "", log.TopicID{1}, 0, 0, 1, 1<<20)
	incremental.SessionID, incremental.SessionEpoch = 1, 1
	incremental.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{TopicID: [16]byte{1}, Partitions: []int32{0}}}
	seeds = append(seeds, join, describe, session, incremental)
	for _, key := range []int16{2, 3, 8, 9, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 32, 37, 42, 47, 60, 68, 69} {
		req := kmsg.RequestForKey(key)
		req.SetVersion(req.MaxVersion())
		seeds = append(seeds, req)
	}
	for _, req := range seeds {
		if req.GetVersion() == 0 {
			req.SetVersion(req.MaxVersion())
		}
		f.Add(requestFrame(req, 1, "fuzz"))
	}
	h, store := newGroupHandler(f)
	if _, err := store.CreateTopic("fuzz", 2, nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a long-polling fetch returns at once
		resp, err := h.Serve(ctx, nil, frame)
		if err == nil && resp != nil && resp.Release != nil {
			resp.Release()
		}
		part, err := store.Partition("fuzz", 0)
		if err != nil {
			return // the fuzzer deleted it
		}
		chunks, _ := part.Read(part.LogStartOffset(), 1<<20, true, nil)
		for _, c := range chunks {
			b := make([]byte, c.Len)
			if err := c.Segment.ReadAt(b, c.Off); err != nil {
				t.Fatal(err)
			}
			if _, err := record.Validate(b); err != nil {
				t.Fatalf("stored batch no longer validates: %v", err)
			}
			c.Release()
		}
	})
}
