// Package group is the group coordinator: classic consumer groups (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, the rebalance protocol of Kafka's
// GroupCoordinator) and committed offsets, for every group, since this
// single broker coordinates them all.
//
// # Groups
//
// Each group has its own mutex; the coordinator's map of groups has another,
// never held while a group's is taken. JoinGroup and SyncGroup requests that
// must wait for the rest of the group park on a channel of the member and
// are answered when the rebalance moves on, or with NOT_COORDINATOR if the
// request's context ends first (a broker shutdown). Session, rebalance,
// pending-member and pending-sync timeouts are timers whose callbacks take
// the group's mutex and check that they are still the current timer.
//
// The states are Kafka's: Empty, PreparingRebalance, CompletingRebalance,
// Stable and Dead (a group removed from the map, which callers that still
// hold it must not use).
//
// # Offsets
//
// Committed offsets are written to the internal topic __consumer_offsets
// (one partition, created on first start with cleanup.policy=compact) as
// Kafka writes them: OffsetCommitKey v1 / OffsetCommitValue v3 (v1 when the
// commit carries an expire timestamp) record keys and values, a null value
// being a tombstone. A commit is answered only once its batch is in the
// store and, under SYNC_FLUSH, durable; the group's mutex is held across
// the write so the offsets in memory follow the order of the log and never
// show a commit the log may lose. Open replays the topic, last write
// winning. Deleting a topic writes tombstones for its offsets in every
// group.
//
// Membership is written there too, when Kafka writes it (GroupMetadataKey
// v2 / GroupMetadataValue v3): when the leader's assignment arrives (the
// SyncGroups are answered once it is stored), when the group empties and
// when a static member is replaced. Open restores each group as Kafka
// loads it, Stable with its last stored generation and members, whose
// sessions start then; so after a restart the members' heartbeats and
// commits are accepted and nothing they polled is processed twice, as
// after a coordinator failover in Kafka. Changes since the last store (a
// member that left, a rebalance in progress) are not kept: departed
// members' sessions expire, and members of an unfinished rebalance rejoin.
//
// The store does not compact, so the coordinator does it itself at every
// offsets retention check: when the topic holds superseded records, it
// appends every live offset again and deletes all that came before
// (DeleteRecords). The topic thus stays near the size of the live offsets
// plus one check interval of commits, Open replays no more than that, and
// the topic does not pin old CommitLog files, which retention could then
// never free. A disk above log.disk.reclaim.ratio may still reclaim the
// file holding the latest rewrite, losing the offsets not committed since.
//
// Offsets expire as in Kafka (offsets.retention.minutes, checked every
// offsets.retention.check.interval.ms): those of an Empty group once the
// retention has passed since it became Empty (since the commit, for groups
// that never had members), those of a Stable consumer group for topics it
// no longer subscribes to, and any whose commit carried an expire
// timestamp (v1-v4 RetentionTimeMillis) once it has passed. The same check
// removes Empty groups left with no offsets.
//
// Deviations from Kafka: group.max.size is not enforced; the offset
// metadata limit is Kafka's default offset.metadata.max.bytes (4096) and
// not configurable; transactional offset commits are not served; KIP-848
// consumer groups are not served.
package group
