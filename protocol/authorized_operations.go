package protocol

import "github.com/twmb/franz-go/pkg/kmsg"

// KIP-430 authorized-operations bitfields. The broker has no authorizer, so
// like Kafka without one it reports every operation the resource type
// supports (AclEntry.supportedOperations) when a client asks, and
// unrequested fields keep the "not requested" value.

// operationsNotRequested is the value of an authorized-operations field the
// client did not ask for (Integer.MIN_VALUE).
const operationsNotRequested int32 = -2147483648

func operationBits(ops ...kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		bits |= 1 << op
	}
	return bits
}

// topicOperations are the operations a TOPIC supports.
var topicOperations = operationBits(
	kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe,
	kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
)

// clusterOperations are the operations the CLUSTER supports.
var clusterOperations = operationBits(
	kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
	kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
)

// groupOperations are the operations a GROUP supports.
var groupOperations = operationBits(kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete)
