// Package config holds the broker's settings as one typed [Config] struct.
//
// Settings use Kafka's own key names (log.dirs, num.partitions, ...) so an
// existing server.properties, a Docker Compose file written for the official
// Kafka image, or a habit of typing Kafka flags keeps working. [Load] reads
// them, in increasing precedence, from
//
//   - built-in defaults ([Default]), chosen so the broker runs on a laptop
//     with no configuration at all;
//   - a file given with --config: Java properties (.properties) or YAML
//     (.yaml, .yml; flat dotted keys or nested maps);
//   - KAFKA_* environment variables, named as the Docker image names them:
//     KAFKA_ plus the key upper-cased with dots turned into underscores
//     (log.dirs is KAFKA_LOG_DIRS);
//   - command-line flags named after the key (--log.dirs=/var/lib/broker).
//
// Invalid values are reported as a [*ValueError] whose message is a single
// line naming the key, the value, where it came from and what is expected.
// Keys a file sets that this broker does not know are returned, not
// rejected: Kafka's server.properties carries many settings that have no
// meaning here.
//
// Other packages should take plain values from the struct rather than this
// package: the store gets a directory and sizes, the server gets listeners.
// [Config.Entries] and [Config.TopicDefaults] present the same values the
// way DescribeConfigs reports them, and [ValidateTopicConfig] checks topic
// configs sent with CreateTopics and AlterConfigs.
package config
