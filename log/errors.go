package log

import "errors"

var (
	// ErrCorrupt marks CommitLog bytes that fail their checks; check it with errors.Is.
	ErrCorrupt = errors.New("log: corrupt data")
	// ErrStorage wraps an I/O failure of the store (Kafka's KAFKA_STORAGE_ERROR).
	ErrStorage = errors.New("log: storage error")
	// ErrTooLarge is a batch over the topic's max.message.bytes (MESSAGE_TOO_LARGE).
	ErrTooLarge = errors.New("log: batch too large")
	// ErrUnknownTopic is a topic that does not exist (UNKNOWN_TOPIC_OR_PARTITION).
	ErrUnknownTopic = errors.New("log: unknown topic")
	// ErrUnknownPartition is a partition the topic does not have.
	ErrUnknownPartition = errors.New("log: unknown partition")
	// ErrTopicExists is a create of an existing topic (TOPIC_ALREADY_EXISTS).
	ErrTopicExists = errors.New("log: topic already exists")
	// ErrInvalidPartitions is a partition count that is not allowed (INVALID_PARTITIONS).
	ErrInvalidPartitions = errors.New("log: invalid partition count")
	// ErrOffsetOutOfRange is a read outside [log start offset, log end offset].
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrInvalidProducerEpoch is a batch from a fenced (older) producer epoch.
	ErrInvalidProducerEpoch = errors.New("log: invalid producer epoch")
	// ErrOutOfOrderSequence is an idempotent batch whose sequence does not follow the last one.
	ErrOutOfOrderSequence = errors.New("log: out of order sequence number")
	// ErrTransactional is a transactional batch; transactions are not served yet.
	ErrTransactional = errors.New("log: transactional batches are not supported")
	// ErrClosed is any use of a closed Log.
	ErrClosed = errors.New("log: closed")

	// errEndOfData is where preallocated zeros begin: the end of written data.
	errEndOfData = errors.New("log: end of data")
)
