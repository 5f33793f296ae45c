package broker

// DescribeConfigs, versions 0-4, for topics (resource type 2) and brokers (type 4). A topic lists every
// topic config the metadata model knows with its effective value and source: DYNAMIC_TOPIC_CONFIG when the
// topic sets it, STATIC_BROKER_CONFIG when it comes from this cluster's broker-level defaults,
// DEFAULT_CONFIG otherwise. A broker lists the same settings under their broker-level names
// (log.segment.bytes, ...). Synonyms (v1+) list the entry itself; config types are given (v3+);
// documentation is null.
// Deliberate differences: only the configs the built-in broker implements are listed (Kafka lists ~40 per
// topic); broker configs are static.

import (
	"slices"
	"strconv"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.DescribeConfigs, 0, 4, (*Node).handleDescribeConfigs) }

// Config sources and types (Kafka's numbering).
const (
	sourceDynamicTopic int8 = 1
	sourceStaticBroker int8 = 4
	sourceDefault      int8 = 5

	typeBoolean int8 = 1
	typeString  int8 = 2
	typeInt     int8 = 3
	typeLong    int8 = 5
	typeList    int8 = 7
)

// topicConfigSpec is one topic config the broker implements: its broker-level name, type and Kafka default
// (used when the cluster defaults do not set it).
type topicConfigSpec struct {
	name, brokerName string
	typ              int8
	kafkaDefault     string
}

var topicConfigSpecs = []topicConfigSpec{
	{meta.ConfigCleanupPolicy, "log.cleanup.policy", typeList, "delete"},
	{meta.ConfigFlushMessages, meta.ConfigFlushMessages, typeLong, "9223372036854775807"},
	{meta.ConfigFlushMs, meta.ConfigFlushMs, typeLong, "9223372036854775807"},
	{meta.ConfigMaxMessageBytes, "message.max.bytes", typeInt, "1048588"},
	{meta.ConfigMinInsyncReplicas, meta.ConfigMinInsyncReplicas, typeInt, "1"},
	{meta.ConfigRetentionMs, "log.retention.ms", typeLong, "604800000"},
	{meta.ConfigSegmentBytes, "log.segment.bytes", typeInt, "1073741824"},
	{meta.ConfigUncleanLeaderElection, meta.ConfigUncleanLeaderElection, typeBoolean, "false"},
}

// configAliases maps Kafka's topic-level names of the flush settings to the names the metadata model uses.
var configAliases = map[string]string{"flush.messages": meta.ConfigFlushMessages, "flush.ms": meta.ConfigFlushMs}

// canonicalConfigName returns the metadata model's name for a topic config.
func canonicalConfigName(name string) string {
	if c, ok := configAliases[name]; ok {
		return c
	}
	return name
}

// configEntry is one described config.
type configEntry struct {
	name, value string
	source      int8
	typ         int8
}

// describeTopicConfigs returns the effective configs of topic; pending (may be nil) overrides the topic's own
// configs (for a topic being validated).
func describeTopicConfigs(im *meta.Image, topic string, pending map[string]string) []configEntry {
	var own map[string]string
	if t := im.Topics[topic]; t != nil {
		own = t.Configs
	}
	if pending != nil {
		own = pending
	}
	out := make([]configEntry, 0, len(topicConfigSpecs))
	for _, s := range topicConfigSpecs {
		e := configEntry{name: s.name, typ: s.typ, value: s.kafkaDefault, source: sourceDefault}
		if v, ok := im.ClusterDefaults[s.name]; ok {
			e.value, e.source = v, brokerSource(v, s)
		}
		if v, ok := own[s.name]; ok {
			e.value, e.source = v, sourceDynamicTopic
		}
		out = append(out, e)
	}
	return out
}

// describeBrokerConfigs returns the broker-level defaults under their broker names.
func describeBrokerConfigs(im *meta.Image) []configEntry {
	out := make([]configEntry, 0, len(topicConfigSpecs))
	for _, s := range topicConfigSpecs {
		e := configEntry{name: s.brokerName, typ: s.typ, value: s.kafkaDefault, source: sourceDefault}
		if v, ok := im.ClusterDefaults[s.name]; ok {
			e.value, e.source = v, brokerSource(v, s)
		}
		out = append(out, e)
	}
	return out
}

// brokerSource is the source of a cluster-level value: the cluster's defaults always carry every key (the node
// fills in what its configuration leaves unset), so a value equal to Kafka's default is reported as
// DEFAULT_CONFIG, as Kafka reports a setting nobody made, and any other as STATIC_BROKER_CONFIG.
func brokerSource(v string, s topicConfigSpec) int8 {
	if v == s.kafkaDefault {
		return sourceDefault
	}
	return sourceStaticBroker
}

func (n *Node) handleDescribeConfigs(cc *connCtx, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	im := n.image()
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		fail := func(code int16, msg string) {
			sr.ErrorCode, sr.ErrorMessage = code, &msg
		}
		var entries []configEntry
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if im.Topics[rr.ResourceName] == nil {
				fail(kerr.UnknownTopicOrPartition.Code, "topic "+strconv.Quote(rr.ResourceName)+" does not exist")
			} else {
				entries = describeTopicConfigs(im, rr.ResourceName, nil)
			}
		case kmsg.ConfigResourceTypeBroker:
			id, err := strconv.ParseInt(rr.ResourceName, 10, 32)
			if _, ok := im.Brokers[int32(id)]; rr.ResourceName != "" && (err != nil || !ok) {
				fail(kerr.InvalidRequest.Code, "unknown broker "+strconv.Quote(rr.ResourceName))
			} else {
				entries = describeBrokerConfigs(im)
			}
		default:
			fail(kerr.InvalidRequest.Code, "only topic and broker configs can be described")
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, e.name) {
				continue
			}
			sc := kmsg.NewDescribeConfigsResponseResourceConfig()
			v := e.value
			sc.Name, sc.Value, sc.Source, sc.ConfigType = e.name, &v, kmsg.ConfigSource(e.source), kmsg.ConfigType(e.typ)
			sc.IsDefault = e.source == sourceDefault
			if req.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = e.name, &v, kmsg.ConfigSource(e.source)
				sc.ConfigSynonyms = append(sc.ConfigSynonyms, syn)
			}
			sr.Configs = append(sr.Configs, sc)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}
