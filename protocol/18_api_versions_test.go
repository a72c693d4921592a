package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAPIVersionsListsServedAPIs(t *testing.T) {
	h, _ := newTestHandler(t)
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "protocol-test", "1.0.0"
		resp := roundTrip(t, h, req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		served := servedAPIs()
		if len(resp.ApiKeys) != len(served) {
			t.Fatalf("v%d: %d API keys, want %d", v, len(resp.ApiKeys), len(served))
		}
		for i, k := range resp.ApiKeys {
			a := served[i]
			wantMin := a.min
			if a.key == 0 {
				wantMin = 0 // Produce is listed from v0, as Kafka 4 does (KAFKA-18659)
			}
			if k.ApiKey != a.key || k.MinVersion != wantMin || k.MaxVersion != a.max {
				t.Errorf("v%d: key %d v%d-v%d, want %d v%d-v%d", v, k.ApiKey, k.MinVersion, k.MaxVersion, a.key, wantMin, a.max)
			}
		}
		if v >= 3 && (len(resp.SupportedFeatures) != 0 || len(resp.FinalizedFeatures) != 0 || resp.FinalizedFeaturesEpoch != -1) {
			t.Errorf("v%d: features %+v %+v epoch %d, want none", v, resp.SupportedFeatures, resp.FinalizedFeatures, resp.FinalizedFeaturesEpoch)
		}
	}
	// Every API this file set serves is advertised with its range.
	want := map[int16][2]int16{2: {1, 11}, 3: {0, 13}, 18: {0, 4}, 19: {2, 7}, 20: {1, 6}, 22: {0, 5}, 32: {1, 4}, 37: {0, 3}, 60: {0, 2}}
	for key, r := range want {
		a, ok := apis[key]
		if !ok || a.min != r[0] || a.max != r[1] {
			t.Errorf("%s: registered %v v%d-v%d, want v%d-v%d", kmsg.NameForKey(key), ok, a.min, a.max, r[0], r[1])
		}
	}
}

func TestAPIVersionsRejectsBadSoftwareName(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, name := range []string{"", "-kgo", "kgo-", "k go", "kgo/1"} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = name, "1.0"
		resp := roundTrip(t, h, req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != kerr.InvalidRequest.Code || len(resp.ApiKeys) != 0 {
			t.Errorf("name %q: error %v with %d keys, want INVALID_REQUEST and none", name, kerr.ErrorForCode(resp.ErrorCode), len(resp.ApiKeys))
		}
	}
	for _, name := range []string{"kgo", "a", "apache-kafka-java", "v1.2.3-rc.1"} {
		if !validSoftwareToken(name) {
			t.Errorf("%q refused", name)
		}
	}
}

// KIP-511: a version newer than served gets a v0 response with
// UNSUPPORTED_VERSION and our ApiVersions range.
func TestAPIVersionsUnsupportedVersionFallsBackToV0(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, v := range []int16{5, 127} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "kgo", "1.0"
		body := serveFrame(t, h, requestFrame(req, testCorrelationID, testClientID))
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: decoding the v0 response: %v", v, err)
		}
		// A v0 body is exactly error code, array length and one key.
		if len(body) != 2+4+6 {
			t.Errorf("v%d: %d-byte body, want a 12-byte v0 body", v, len(body))
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Errorf("v%d: error %v, want UNSUPPORTED_VERSION", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MinVersion != 0 || resp.ApiKeys[0].MaxVersion != 4 {
			t.Errorf("v%d: keys %+v, want only ApiVersions v0-v4", v, resp.ApiKeys)
		}
	}
}

// Other APIs at an unserved version close the connection, as in Kafka.
func TestUnsupportedVersionOfOtherAPIsErrs(t *testing.T) {
	h, _ := newTestHandler(t)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 14
	if _, err := h.Serve(t.Context(), nil, requestFrame(req, testCorrelationID, testClientID)); err == nil {
		t.Fatal("Metadata v14 served")
	}
}
