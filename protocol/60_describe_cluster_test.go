package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeCluster(t *testing.T) {
	h, store := newTestHandler(t)
	for v := int16(0); v <= 2; v++ {
		for _, ops := range []bool{false, true} {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.Version = v
			req.IncludeClusterAuthorizedOperations = ops
			req.IncludeFencedBrokers = true
			resp := roundTrip(t, h, req).(*kmsg.DescribeClusterResponse)
			if resp.ErrorCode != 0 || resp.ClusterID != store.ClusterID() || resp.ControllerID != testNodeID {
				t.Fatalf("v%d: %v cluster %q controller %d", v, kerr.ErrorForCode(resp.ErrorCode), resp.ClusterID, resp.ControllerID)
			}
			if len(resp.Brokers) != 1 {
				t.Fatalf("v%d: brokers %+v", v, resp.Brokers)
			}
			if b := resp.Brokers[0]; b.NodeID != testNodeID || b.Host != "broker.test" || b.Port != 9092 || b.Rack != nil || b.IsFenced {
				t.Errorf("v%d: broker %+v", v, b)
			}
			if v >= 1 && resp.EndpointType != 1 {
				t.Errorf("v%d: endpoint type %d", v, resp.EndpointType)
			}
			want := operationsNotRequested
			if ops {
				want = clusterOperations
			}
			if resp.ClusterAuthorizedOperations != want {
				t.Errorf("v%d: authorized operations %d, want %d", v, resp.ClusterAuthorizedOperations, want)
			}
		}
	}

	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = 2 // controllers
	resp := roundTrip(t, h, req).(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != kerr.UnsupportedEndpointType.Code || resp.ErrorMessage == nil || len(resp.Brokers) != 0 {
		t.Errorf("controllers: %v %v %+v", kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage, resp.Brokers)
	}
}
