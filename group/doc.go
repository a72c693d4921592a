// Package group is the group coordinator: classic consumer groups (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, the rebalance protocol of Kafka's
// GroupCoordinator), KIP-848 consumer groups (ConsumerGroupHeartbeat, with
// server-side assignors) and committed offsets, for every group, since this
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
// # Consumer groups (KIP-848)
//
// A group whose first member joins with ConsumerGroupHeartbeat is a
// consumer group (g.consumer set); an empty group changes protocol
// with its next member, keeping its offsets, while one with members
// refuses the other protocol. Every change of members or of what they
// subscribe to (topic names, a regex resolved against the catalogue,
// re-resolved when CatalogVersion moves) starts a new group epoch, whose
// target assignment the assignor the members ask for computes at once
// ("uniform", sticky and balanced, or "range"). Each member then moves to
// its target as Kafka's CurrentAssignmentBuilder does: partitions it must
// give up are revoked first, at its current epoch; once a heartbeat shows
// it no longer owns them it moves to the target epoch and gets the target
// partitions that no other member still holds (owners), the rest on later
// heartbeats as they are released. A heartbeat from the previous epoch
// that owns no more than the member's assignment is accepted (a lost
// response); anything else stale is FENCED_MEMBER_EPOCH. Sessions
// (group.consumer.session.timeout.ms) and revocations (the member's
// rebalance timeout) are timers that remove the member.
//
// Offset commits from members are checked against their epoch, or an
// older one for partitions held since then (KIP-1251); OffsetFetch naming
// a member must carry its current epoch.
//
// Each change is stored before the heartbeat is answered, in records of
// this broker's own in __consumer_offsets, with key versions Kafka does not
// use and keys laid out as Kafka's (int16 version, int16-length strings),
// values in JSON. As in Kafka, the group and each member have records of
// their own, so a member's step writes that member's record only:
//
//	key 0x1848, group id:            {"version":1, "epoch":E, "assignment_epoch":E, "assignor":"uniform"}
//	key 0x1849, group id, member id: {"version":1, "instance_id", "rack_id", "client_id", "client_host",
//	                                  "rebalance_timeout_ms", "topic_names", "regex", "server_assignor",
//	                                  "epoch", "previous_epoch", "state", "left",
//	                                  "assigned":[{"id":"<topic id hex>", "partitions":"<packed>", "epochs":"<packed>"}],
//	                                  "revoking":[...], "target":[...]}
//
// Partition lists are packed (base64 of uvarint gaps; epochs as zigzag
// varint differences), about 3 bytes a partition, and a member's record is
// bounded by 512 KiB: a member whose record would be larger is removed
// (its heartbeat gets UNKNOWN_SERVER_ERROR) rather than block the group's
// writes. Records are written tombstones first, so a crash between two
// batches of a large change loses new records (their members rejoin)
// rather than keep old ones; a partition or instance id two restored
// members claim stays with the first by member id.
//
// A null value is a tombstone: of a member that left, or of every record
// of a group deleted, expired or turned classic. Open restores each group
// from its latest records: members at their epochs with their
// assignments, sessions starting then, so after a restart or kill -9
// members carry on with their next heartbeat.
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
// offsets retention check: when the topic holds superseded records, or its
// live records lie more than a CommitLog file behind the end (a group that
// committed once and never again), it appends every live record again and
// deletes all that came before (DeleteRecords). The topic thus stays near
// the size of its live records plus one check interval of commits, Open
// replays no more than that, and the topic pins at most the newest two
// CommitLog files, never older ones that retention could then not free. A
// disk above log.disk.reclaim.ratio that reclaims down to those files
// still loses the offsets in them.
//
// Offsets expire as in Kafka (offsets.retention.minutes, checked every
// offsets.retention.check.interval.ms): those of an Empty classic group
// once the retention has passed since it became Empty (since the commit,
// for groups that never had members), those of a Stable classic consumer
// group for topics it no longer subscribes to, those of a KIP-848 group
// for topics no member subscribes to (by commit time, members or not),
// and any whose commit carried an expire timestamp (v1-v4
// RetentionTimeMillis) once it has passed. The same check
// removes Empty groups left with no offsets.
//
// group.max.size bounds a classic group's members (those handed an id
// with MEMBER_ID_REQUIRED count) and group.consumer.max.size a consumer
// group's; a member beyond either gets GROUP_MAX_SIZE_REACHED.
//
// Deviations from Kafka: the offset metadata limit is Kafka's default
// offset.metadata.max.bytes (4096) and not configurable; transactional
// offset commits are not served; classic and consumer-protocol members do
// not share a group (no online migration).
package group
