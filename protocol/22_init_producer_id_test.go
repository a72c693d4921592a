package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestInitProducerIDIdempotent(t *testing.T) {
	h, _ := newTestHandler(t)
	seen := map[int64]bool{}
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = v
		resp := roundTrip(t, h, req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 || seen[resp.ProducerID] {
			t.Fatalf("v%d: %v id %d epoch %d", v, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch)
		}
		seen[resp.ProducerID] = true

		if v < 3 {
			continue
		}
		// KIP-360 without a transactional ID: a new ID, as Kafka does.
		again := kmsg.NewPtrInitProducerIDRequest()
		again.Version = v
		again.ProducerID, again.ProducerEpoch = resp.ProducerID, resp.ProducerEpoch
		bumped := roundTrip(t, h, again).(*kmsg.InitProducerIDResponse)
		if bumped.ErrorCode != 0 || bumped.ProducerEpoch != 0 || seen[bumped.ProducerID] {
			t.Fatalf("v%d re-init: %v id %d epoch %d", v, kerr.ErrorForCode(bumped.ErrorCode), bumped.ProducerID, bumped.ProducerEpoch)
		}
		seen[bumped.ProducerID] = true
	}
}

func TestInitProducerIDTransactionalRefused(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, c := range []struct {
		txnID string
		want  *kerr.Error
	}{
		{"my-txn", kerr.TransactionalIDAuthorizationFailed},
		{"", kerr.InvalidRequest},
	} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID = kmsg.StringPtr(c.txnID)
		req.TransactionTimeoutMillis = 60000
		resp := roundTrip(t, h, req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != c.want.Code || resp.ProducerID != -1 || resp.ProducerEpoch != -1 {
			t.Errorf("%q: %v id %d epoch %d, want %v", c.txnID, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch, c.want)
		}
		// The error must make clients give up rather than retry.
		if kerr.IsRetriable(kerr.ErrorForCode(resp.ErrorCode)) {
			t.Errorf("%q: %v is retriable", c.txnID, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
}
