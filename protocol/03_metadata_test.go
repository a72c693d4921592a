package protocol

import (
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func metadata(t *testing.T, h *Handler, version int16, allowAuto bool, topics ...string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	req.AllowAutoTopicCreation = allowAuto
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return roundTrip(t, h, req).(*kmsg.MetadataResponse)
}

func TestMetadataBrokerAndTopics(t *testing.T) {
	h, store := newTestHandler(t)
	id := createTopic(t, h, "orders", 2, nil)
	createTopic(t, h, "audit", 1, nil)

	for v := int16(0); v <= 13; v++ {
		var resp *kmsg.MetadataResponse
		if v == 0 {
			resp = metadata(t, h, v, false, []string{}...) // v0: empty means all
		} else {
			resp = metadata(t, h, v, false) // null: all
		}
		if len(resp.Brokers) != 1 {
			t.Fatalf("v%d: %d brokers", v, len(resp.Brokers))
		}
		if b := resp.Brokers[0]; b.NodeID != testNodeID || b.Host != "broker.test" || b.Port != 9092 || b.Rack != nil {
			t.Errorf("v%d: broker %+v", v, b)
		}
		if v >= 1 && resp.ControllerID != testNodeID {
			t.Errorf("v%d: controller %d", v, resp.ControllerID)
		}
		if v >= 2 && (resp.ClusterID == nil || *resp.ClusterID != store.ClusterID()) {
			t.Errorf("v%d: cluster ID %v, want %s", v, resp.ClusterID, store.ClusterID())
		}
		if len(resp.Topics) != 2 || *resp.Topics[0].Topic != "audit" || *resp.Topics[1].Topic != "orders" {
			t.Fatalf("v%d: topics %+v", v, resp.Topics)
		}
		orders := resp.Topics[1]
		if orders.ErrorCode != 0 || orders.IsInternal || len(orders.Partitions) != 2 {
			t.Errorf("v%d: orders %+v", v, orders)
		}
		if v >= 10 && orders.TopicID != id {
			t.Errorf("v%d: topic ID %x, want %x", v, orders.TopicID, id)
		}
		if v >= 8 && orders.AuthorizedOperations != operationsNotRequested {
			t.Errorf("v%d: authorized operations %d without asking", v, orders.AuthorizedOperations)
		}
		for i, p := range orders.Partitions {
			if p.Partition != int32(i) || p.ErrorCode != 0 || p.Leader != testNodeID ||
				len(p.Replicas) != 1 || p.Replicas[0] != testNodeID || len(p.ISR) != 1 || p.ISR[0] != testNodeID || len(p.OfflineReplicas) != 0 {
				t.Errorf("v%d: partition %+v", v, p)
			}
			if v >= 7 && p.LeaderEpoch != 0 {
				t.Errorf("v%d: leader epoch %d", v, p.LeaderEpoch)
			}
		}
	}

	// v1+: an empty list asks for no topics.
	if resp := metadata(t, h, 12, false, []string{}...); len(resp.Topics) != 0 {
		t.Errorf("empty list: %d topics", len(resp.Topics))
	}
	// Named topics, each once.
	resp := metadata(t, h, 12, false, "orders", "orders")
	if len(resp.Topics) != 1 || *resp.Topics[0].Topic != "orders" {
		t.Errorf("orders twice: %+v", resp.Topics)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	h, store := newTestHandler(t)

	// v4+ honours AllowAutoTopicCreation.
	resp := metadata(t, h, 12, false, "not-yet")
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("not allowed: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	if _, ok := store.Topic("not-yet"); ok {
		t.Fatal("created although the client did not allow it")
	}

	resp = metadata(t, h, 12, true, "events")
	mt := resp.Topics[0]
	if mt.ErrorCode != 0 || len(mt.Partitions) != 3 {
		t.Fatalf("auto-created: %v with %d partitions, want 3", kerr.ErrorForCode(mt.ErrorCode), len(mt.Partitions))
	}
	st, ok := store.Topic("events")
	if !ok || st.Partitions != 3 || mt.TopicID != st.ID {
		t.Fatalf("store has %+v (%v), response ID %x", st, ok, mt.TopicID)
	}

	// Before v4 there is no flag: auto-creation is allowed.
	if resp := metadata(t, h, 3, false, "legacy"); resp.Topics[0].ErrorCode != 0 {
		t.Errorf("v3: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	// Invalid names are never created.
	for _, name := range []string{"a/b", "..", strings.Repeat("a", 250)} {
		resp := metadata(t, h, 12, true, name)
		if resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
			t.Errorf("%q: %v, want INVALID_TOPIC_EXCEPTION", name, kerr.ErrorForCode(resp.Topics[0].ErrorCode))
		}
	}
	if n := len(store.Topics()); n != 2 {
		t.Errorf("%d topics in the store, want 2", n)
	}

	// The broker can turn auto-creation off.
	h2, _ := newTestHandler(t, func(c *Config) { c.AutoCreateTopics = false })
	if resp := metadata(t, h2, 12, true, "events"); resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("auto.create.topics.enable=false: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
}

// Clients racing to auto-create one topic all get it, with one ID.
func TestMetadataAutoCreateRace(t *testing.T) {
	h, _ := newTestHandler(t)
	const clients = 8
	ids := make([][16]byte, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			resp := metadata(t, h, 12, true, "raced")
			if mt := resp.Topics[0]; mt.ErrorCode != 0 || len(mt.Partitions) != 3 {
				t.Errorf("client %d: %v, %d partitions", i, kerr.ErrorForCode(mt.ErrorCode), len(mt.Partitions))
			}
			ids[i] = resp.Topics[0].TopicID
		})
	}
	wg.Wait()
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("client %d saw topic ID %x, client 0 %x", i, ids[i], ids[0])
		}
	}
}

func TestMetadataByTopicID(t *testing.T) {
	h, _ := newTestHandler(t)
	id := createTopic(t, h, "by-id", 2, nil)
	for _, v := range []int16{10, 12, 13} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		req.AllowAutoTopicCreation = true
		known := kmsg.NewMetadataRequestTopic()
		known.TopicID = id
		unknown := kmsg.NewMetadataRequestTopic()
		unknown.TopicID = [16]byte{1, 2, 3}
		req.Topics = []kmsg.MetadataRequestTopic{known, unknown}
		resp := roundTrip(t, h, req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 2 {
			t.Fatalf("v%d: %d topics", v, len(resp.Topics))
		}
		if mt := resp.Topics[0]; mt.ErrorCode != 0 || mt.Topic == nil || *mt.Topic != "by-id" || mt.TopicID != id || len(mt.Partitions) != 2 {
			t.Errorf("v%d: known ID: %+v", v, mt)
		}
		// The name is nullable from v12; before, null is sent as "".
		if mt := resp.Topics[1]; mt.ErrorCode != kerr.UnknownTopicID.Code || (mt.Topic != nil && *mt.Topic != "") || mt.TopicID != unknown.TopicID {
			t.Errorf("v%d: unknown ID: %v %v %x", v, kerr.ErrorForCode(mt.ErrorCode), mt.Topic, mt.TopicID)
		}
		if v >= 13 && resp.ErrorCode != 0 {
			t.Errorf("v%d: top-level error %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
}

func TestMetadataAuthorizedOperations(t *testing.T) {
	h, _ := newTestHandler(t)
	createTopic(t, h, "ops", 1, nil)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 10
	req.IncludeClusterAuthorizedOperations = true
	req.IncludeTopicAuthorizedOperations = true
	resp := roundTrip(t, h, req).(*kmsg.MetadataResponse)
	if resp.AuthorizedOperations != clusterOperations {
		t.Errorf("cluster operations %b", resp.AuthorizedOperations)
	}
	// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
	if got := resp.Topics[0].AuthorizedOperations; got != 1<<3|1<<4|1<<5|1<<6|1<<7|1<<8|1<<10|1<<11 {
		t.Errorf("topic operations %b", got)
	}
}
