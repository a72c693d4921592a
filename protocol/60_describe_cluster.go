package protocol

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-v2.
//
// One broker, this one, never fenced; the controller ID is our node ID.
// v1 adds EndpointType: like a Kafka broker we describe brokers (1) only,
// and a request for controllers (2) gets UNSUPPORTED_ENDPOINT_TYPE. v2
// adds IncludeFencedBrokers and IsFenced, which change nothing here.
// ClusterAuthorizedOperations is every cluster operation when requested
// (there is no authorizer), else -2147483648.

func init() {
	register(api{key: 60, min: 0, max: 2, serve: typed(serveDescribeCluster)})
}

// endpointTypeBrokers is DescribeCluster's EndpointType for brokers.
const endpointTypeBrokers = 1

func serveDescribeCluster(h *Handler, _ context.Context, _ *request, req *kmsg.DescribeClusterRequest) (*kmsg.DescribeClusterResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = h.store.ClusterID()
	if req.Version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("The broker does not support endpoint type %d; only brokers (1) can be described here.", req.EndpointType))
		return resp, nil
	}
	resp.EndpointType = endpointTypeBrokers
	resp.ControllerID = h.cfg.NodeID
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = h.cfg.NodeID, h.cfg.AdvertisedHost, h.cfg.AdvertisedPort
	resp.Brokers = append(resp.Brokers, b)
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	return resp, nil
}
