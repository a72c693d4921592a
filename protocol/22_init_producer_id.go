package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// InitProducerId: v0-v5.
//
// Idempotent producers (null TransactionalID) get a new producer ID with
// epoch 0. Like Kafka, a v3+ request carrying its current ProducerID and
// ProducerEpoch (KIP-360) without a transactional ID also gets a new ID:
// Kafka only bumps epochs for transactional IDs, and clients bump an
// idempotent epoch locally.
//
// Deviation: transactions are not supported. A request with a
// transactional ID is answered TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which
// Kafka sends when a client may not use a transactional ID: it is not
// retriable, so franz-go fails the transactional producer at once (kgo
// doInitProducerID keeps the error; sink.go fails the buffered records) and
// the Java client raises a fatal TransactionalIdAuthorizationException,
// instead of retrying until a timeout as they would on the retriable
// COORDINATOR_NOT_AVAILABLE or NOT_COORDINATOR. UNSUPPORTED_VERSION would
// also be fatal, but it says the request version is wrong, which misleads.
// An empty transactional ID gets INVALID_REQUEST, as in Kafka.

func init() {
	register(api{key: 22, min: 0, max: 5, serve: typed(serveInitProducerID)})
}

func serveInitProducerID(h *Handler, _ context.Context, r *request, req *kmsg.InitProducerIDRequest) (*kmsg.InitProducerIDResponse, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerEpoch = -1
	if req.TransactionalID != nil {
		if *req.TransactionalID == "" {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp, nil
		}
		h.logger.Info("refused a transactional producer: transactions are not supported",
			zap.String("transactional_id", *req.TransactionalID), zap.String("client_id", r.clientID))
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	id, epoch, err := h.store.InitProducerID()
	if err != nil {
		h.logger.Warn("allocating a producer ID", zap.Error(err))
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, epoch
	return resp, nil
}
