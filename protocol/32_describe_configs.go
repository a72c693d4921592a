package protocol

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v1-v4.
//
// TOPIC resources: every topic config, the broker-level defaults overlaid
// with the topic's overrides. Source is DYNAMIC_TOPIC_CONFIG for an
// override, else STATIC_BROKER_CONFIG when the broker key behind the
// default was set in the broker config and DEFAULT_CONFIG when it was not.
// Synonyms (IncludeSynonyms) are, as in Kafka, the override first, then the
// broker key with its value and source. An invalid topic name gets
// INVALID_TOPIC_EXCEPTION, an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
//
// BROKER resources: our node ID gets every broker config, source
// STATIC_BROKER_CONFIG or DEFAULT_CONFIG; the empty name asks, as in Kafka,
// for the cluster-wide dynamic defaults, of which there are none, so it
// gets an empty list. Another node ID, or a name that is not a number,
// gets INVALID_REQUEST.
//
// Sensitive values are null. ConfigNames filters (null or empty: all;
// unknown names are left out). ConfigType (v3+) comes from the config's
// type; Documentation (v3+, when asked) is given for broker configs.
//
// Deviations: BROKER_LOGGER, CLIENT_METRICS and GROUP resources get
// INVALID_REQUEST; topic configs carry no documentation (null), as the
// broker config holds none for them.

func init() {
	register(api{key: 32, min: 1, max: 4, serve: typed(serveDescribeConfigs)})
}

func serveDescribeConfigs(h *Handler, _ context.Context, _ *request, req *kmsg.DescribeConfigsRequest) (*kmsg.DescribeConfigsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		var aerr *apiError
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			res.Configs, aerr = h.describeTopicResource(req, rr)
		case kmsg.ConfigResourceTypeBroker:
			res.Configs, aerr = h.describeBrokerResource(req, rr)
		default:
			aerr = newAPIError(kerr.InvalidRequest, "Unsupported resource type: %s", rr.ResourceType)
		}
		if aerr != nil {
			res.Configs = nil
			res.ErrorCode, res.ErrorMessage = aerr.code, aerr.messagePtr()
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

// wanted applies the ConfigNames filter.
func wanted(rr kmsg.DescribeConfigsRequestResource, name string) bool {
	return len(rr.ConfigNames) == 0 || slices.Contains(rr.ConfigNames, name)
}

func (h *Handler) describeTopicResource(req *kmsg.DescribeConfigsRequest, rr kmsg.DescribeConfigsRequestResource) ([]kmsg.DescribeConfigsResponseResourceConfig, *apiError) {
	if err := validTopicName(rr.ResourceName); err != nil {
		return nil, &apiError{code: kerr.InvalidTopicException.Code, message: err.Error()}
	}
	t, ok := h.store.Topic(rr.ResourceName)
	if !ok {
		return nil, &apiError{code: kerr.UnknownTopicOrPartition.Code}
	}
	out := []kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range h.describeTopicConfigs(t.Configs) {
		if !wanted(rr, c.name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.Value, rc.Source, rc.IsSensitive = c.name, c.value, c.source, c.sensitive
		rc.IsDefault = c.source == kmsg.ConfigSourceDefaultConfig
		rc.ConfigType = c.typ
		if req.IncludeSynonyms {
			for _, s := range c.synonyms {
				rs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				rs.Name, rs.Value, rs.Source = s.name, s.value, s.source
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, rs)
			}
		}
		out = append(out, rc)
	}
	return out, nil
}

func (h *Handler) describeBrokerResource(req *kmsg.DescribeConfigsRequest, rr kmsg.DescribeConfigsRequestResource) ([]kmsg.DescribeConfigsResponseResourceConfig, *apiError) {
	out := []kmsg.DescribeConfigsResponseResourceConfig{}
	if rr.ResourceName == "" {
		return out, nil // no dynamic cluster-wide defaults
	}
	id, err := strconv.ParseInt(rr.ResourceName, 10, 32)
	if err != nil {
		return nil, newAPIError(kerr.InvalidRequest, "Broker id must be an integer, but it is: %s", rr.ResourceName)
	}
	if int32(id) != h.cfg.NodeID {
		return nil, newAPIError(kerr.InvalidRequest, "Unexpected broker id, expected %d or empty string, but received %s", h.cfg.NodeID, rr.ResourceName)
	}
	for _, e := range h.cfg.BrokerConfigs {
		if !wanted(rr, e.Name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.ReadOnly, rc.IsSensitive, rc.IsDefault = e.Name, e.ReadOnly, e.Sensitive, e.Default
		if !e.Sensitive {
			rc.Value = kmsg.StringPtr(e.Value)
		}
		rc.Source = kmsg.ConfigSourceStaticBrokerConfig
		if e.Default {
			rc.Source = kmsg.ConfigSourceDefaultConfig
		}
		rc.ConfigType = configType(e.Type)
		if req.IncludeSynonyms {
			rs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			rs.Name, rs.Value, rs.Source = e.Name, rc.Value, rc.Source
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, rs)
		}
		if req.IncludeDocumentation && e.Doc != "" {
			rc.Documentation = kmsg.StringPtr(e.Doc)
		}
		out = append(out, rc)
	}
	return out, nil
}
