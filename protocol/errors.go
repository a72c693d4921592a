package protocol

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/rocketkafka/broker/log"
	"github.com/rocketkafka/broker/record"
)

// errorCode maps a store error to the Kafka error code a client sees.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, log.ErrUnknownTopic), errors.Is(err, log.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, log.ErrTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, record.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, record.ErrInvalidRecord), errors.Is(err, record.ErrUnsupportedMagic):
		return kerr.InvalidRecord.Code
	case errors.Is(err, record.ErrUnsupportedCodec):
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, log.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, log.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, log.ErrTransactional):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, log.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, log.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, log.ErrClosed):
		return kerr.NotLeaderForPartition.Code // the broker is shutting down: clients retry elsewhere or later
	default:
		return kerr.KafkaStorageError.Code
	}
}
