package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func describeConfigs(t *testing.T, h *Handler, version int16, synonyms, docs bool, resources ...kmsg.DescribeConfigsRequestResource) []kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = version
	req.IncludeSynonyms, req.IncludeDocumentation = synonyms, docs
	req.Resources = resources
	resp := roundTrip(t, h, req).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != len(resources) {
		t.Fatalf("%d answers for %d resources", len(resp.Resources), len(resources))
	}
	return resp.Resources
}

func configResource(typ kmsg.ConfigResourceType, name string, configs ...string) kmsg.DescribeConfigsRequestResource {
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = typ, name, configs
	return r
}

func configsByName(res kmsg.DescribeConfigsResponseResource) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range res.Configs {
		out[c.Name] = c
	}
	return out
}

type synonym struct {
	name, value string
	source      kmsg.ConfigSource
}

func TestDescribeConfigsTopic(t *testing.T) {
	h, _ := newTestHandler(t)
	createTopic(t, h, "described", 1, map[string]string{"retention.ms": "1000", "segment.ms": "60000"})

	want := map[string]struct {
		value    string
		source   kmsg.ConfigSource
		typ      kmsg.ConfigType
		synonyms []synonym
	}{
		"retention.ms": {"1000", kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigTypeLong, []synonym{
			{"retention.ms", "1000", kmsg.ConfigSourceDynamicTopicConfig},
			{"log.retention.hours", "168", kmsg.ConfigSourceDefaultConfig}, // the broker key's own value
		}},
		"segment.ms": {"60000", kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigTypeUnknown, []synonym{
			{"segment.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig},
		}},
		"max.message.bytes": {"2097152", kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigTypeInt, []synonym{
			{"message.max.bytes", "2097152", kmsg.ConfigSourceStaticBrokerConfig},
		}},
		"cleanup.policy": {"delete", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeList, []synonym{
			{"log.cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig},
		}},
		"message.timestamp.type": {"CreateTime", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeString, []synonym{
			{"log.message.timestamp.type", "CreateTime", kmsg.ConfigSourceDefaultConfig},
		}},
		"key.index.enable": {"false", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeBoolean, nil},
	}

	for v := int16(1); v <= 4; v++ {
		for _, withSynonyms := range []bool{false, true} {
			res := describeConfigs(t, h, v, withSynonyms, true, configResource(kmsg.ConfigResourceTypeTopic, "described"))[0]
			if res.ErrorCode != 0 || res.ResourceName != "described" || res.ResourceType != kmsg.ConfigResourceTypeTopic {
				t.Fatalf("v%d: %+v", v, res)
			}
			got := configsByName(res)
			if len(got) != len(want) {
				t.Errorf("v%d: %d configs, want %d", v, len(got), len(want))
			}
			for name, w := range want {
				c, ok := got[name]
				if !ok || c.Value == nil || *c.Value != w.value || c.Source != w.source || c.ReadOnly || c.IsSensitive {
					t.Errorf("v%d %s: %+v, want %s from %v", v, name, c, w.value, w.source)
					continue
				}
				wantType := w.typ
				if v < 3 {
					wantType = kmsg.ConfigTypeUnknown // not on the wire
				}
				if c.ConfigType != wantType {
					t.Errorf("v%d %s: type %v, want %v", v, name, c.ConfigType, wantType)
				}
				var syns []synonym
				for _, s := range c.ConfigSynonyms {
					syns = append(syns, synonym{s.Name, *s.Value, s.Source})
				}
				wantSyns := w.synonyms
				if !withSynonyms {
					wantSyns = nil
				}
				if len(syns) != len(wantSyns) {
					t.Errorf("v%d %s: synonyms %+v, want %+v", v, name, syns, wantSyns)
					continue
				}
				for i := range syns {
					if syns[i] != wantSyns[i] {
						t.Errorf("v%d %s: synonyms %+v, want %+v", v, name, syns, wantSyns)
						break
					}
				}
			}
		}
	}

	// ConfigNames filters; unknown names are left out.
	res := describeConfigs(t, h, 4, false, false, configResource(kmsg.ConfigResourceTypeTopic, "described", "retention.ms", "no.such"))[0]
	if len(res.Configs) != 1 || res.Configs[0].Name != "retention.ms" {
		t.Errorf("filtered: %+v", res.Configs)
	}
}

func TestDescribeConfigsErrors(t *testing.T) {
	h, _ := newTestHandler(t)
	resources := describeConfigs(t, h, 4, false, false,
		configResource(kmsg.ConfigResourceTypeTopic, "missing"),
		configResource(kmsg.ConfigResourceTypeTopic, "a/b"),
		configResource(kmsg.ConfigResourceTypeBroker, "2"),
		configResource(kmsg.ConfigResourceTypeBroker, "one"),
		configResource(kmsg.ConfigResourceTypeBrokerLogger, "1"),
		configResource(kmsg.ConfigResourceTypeGroupConfig, "g"),
	)
	for i, want := range []*kerr.Error{
		kerr.UnknownTopicOrPartition,
		kerr.InvalidTopicException,
		kerr.InvalidRequest,
		kerr.InvalidRequest,
		kerr.InvalidRequest,
		kerr.InvalidRequest,
	} {
		res := resources[i]
		if res.ErrorCode != want.Code || len(res.Configs) != 0 {
			t.Errorf("%v %q: %v with %d configs, want %v", res.ResourceType, res.ResourceName, kerr.ErrorForCode(res.ErrorCode), len(res.Configs), want)
		}
	}
}

func TestDescribeConfigsBroker(t *testing.T) {
	h, _ := newTestHandler(t)
	for v := int16(1); v <= 4; v++ {
		res := describeConfigs(t, h, v, true, true, configResource(kmsg.ConfigResourceTypeBroker, "1"))[0]
		if res.ErrorCode != 0 {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(res.ErrorCode))
		}
		got := configsByName(res)
		if len(got) != len(testConfig().BrokerConfigs) {
			t.Errorf("v%d: %d configs", v, len(got))
		}
		if c := got["log.retention.hours"]; *c.Value != "168" || c.Source != kmsg.ConfigSourceDefaultConfig || len(c.ConfigSynonyms) != 1 {
			t.Errorf("v%d: log.retention.hours %+v", v, c)
		}
		if c := got["message.max.bytes"]; *c.Value != "2097152" || c.Source != kmsg.ConfigSourceStaticBrokerConfig || c.ReadOnly {
			t.Errorf("v%d: message.max.bytes %+v", v, c)
		}
		if c := got["broker.id"]; !c.ReadOnly {
			t.Errorf("v%d: broker.id not read-only", v)
		}
		if c := got["sasl.jaas.config"]; c.Value != nil || !c.IsSensitive || (len(c.ConfigSynonyms) > 0 && c.ConfigSynonyms[0].Value != nil) {
			t.Errorf("v%d: sensitive config shown: %+v", v, c)
		}
		if c := got["message.max.bytes"]; v >= 3 && (c.Documentation == nil || c.ConfigType != kmsg.ConfigTypeInt) {
			t.Errorf("v%d: documentation %v type %v", v, c.Documentation, c.ConfigType)
		}
	}
	// The empty name is the cluster-wide dynamic defaults: none.
	res := describeConfigs(t, h, 4, false, false, configResource(kmsg.ConfigResourceTypeBroker, ""))[0]
	if res.ErrorCode != 0 || len(res.Configs) != 0 {
		t.Errorf("cluster defaults: %v %+v", kerr.ErrorForCode(res.ErrorCode), res.Configs)
	}
	// Filtered.
	res = describeConfigs(t, h, 4, false, false, configResource(kmsg.ConfigResourceTypeBroker, "1", "broker.id"))[0]
	if len(res.Configs) != 1 || res.Configs[0].Name != "broker.id" {
		t.Errorf("filtered: %+v", res.Configs)
	}
}
