package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rocketkafka/broker/netpoll"
)

// ApiVersions: v0-v4.
//
// Lists every registered API with the versions it serves (Produce from v0,
// see advertisedMin). v3+ requests
// must carry a client software name and version matching Kafka's pattern,
// else INVALID_REQUEST (with no API list), as Kafka does.
//
// A version newer than v4 is answered by unsupportedAPIVersions (KIP-511).
//
// Deviations: no features are advertised (SupportedFeatures and
// FinalizedFeatures are empty, FinalizedFeaturesEpoch -1), since the
// broker has no feature levels to finalize. v5 (KIP-1242 cluster and node
// check) is not served.

func init() {
	register(api{key: 18, min: 0, max: 4, serve: typed(serveAPIVersions)})
}

func serveAPIVersions(_ *Handler, _ context.Context, _ *request, req *kmsg.ApiVersionsRequest) (*kmsg.ApiVersionsResponse, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!validSoftwareToken(req.ClientSoftwareName) || !validSoftwareToken(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	for _, a := range servedAPIs() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, advertisedMin(a), a.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp, nil
}

// advertisedMin is the lowest version ApiVersions lists for a. Produce is
// listed from v0 although v0-v2 are not served (a request for them closes
// the connection), as Kafka 4 does (KAFKA-18659): librdkafka before 2.10
// compresses with gzip, snappy or lz4 only when the broker lists Produce
// v0, and clients pick the highest version both sides know anyway.
func advertisedMin(a api) int16 {
	if a.key == 0 {
		return 0
	}
	return a.min
}

// unsupportedAPIVersions answers an ApiVersions request of a version newer
// than we serve, as Kafka does (KIP-511): a v0 response, which every client
// can read, carrying UNSUPPORTED_VERSION and our ApiVersions version range,
// so the client retries with the highest version we know.
func unsupportedAPIVersions(r *request) *netpoll.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey = 18
	if a, ok := apis[18]; ok {
		k.MinVersion, k.MaxVersion = a.min, a.max
	}
	resp.ApiKeys = append(resp.ApiKeys, k)
	v0 := *r
	v0.version = 0
	return encodeResponse(&v0, resp)
}

// validSoftwareToken is Kafka's check of ClientSoftwareName and
// ClientSoftwareVersion: [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
func validSoftwareToken(s string) bool {
	alnum := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	if s == "" || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
