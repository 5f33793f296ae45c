package broker

// IncrementalAlterConfigs, versions 0-1, for topics (resource type 2). SET and DELETE are applied through the
// metadata quorum as one AlterConfigs command per resource (all of a resource's changes take effect together
// or not at all); ValidateOnly checks without proposing. The new values reach every replica when it applies
// the image (a partition's log picks up new flush and segment settings at once).
// Deliberate differences: APPEND and SUBTRACT (list configs) are refused with INVALID_REQUEST; broker configs
// are static (INVALID_REQUEST); unknown topic configs get INVALID_CONFIG naming the key. Kafka's topic-level
// names flush.messages and flush.ms are accepted for log.flush.interval.messages and log.flush.interval.ms.

import (
	"fmt"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	registerHandler(kmsg.IncrementalAlterConfigs, 0, 1, (*Node).handleIncrementalAlterConfigs)
}

func (n *Node) handleIncrementalAlterConfigs(cc *connCtx, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		code, msg := n.alterTopicConfigs(cc, rr, req.ValidateOnly)
		if code != 0 {
			sr.ErrorCode, sr.ErrorMessage = code, &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// alterTopicConfigs validates and (unless validateOnly) applies one resource's changes.
func (n *Node) alterTopicConfigs(cc *connCtx, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) (int16, string) {
	if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
		return kerr.InvalidRequest.Code, "only topic configs can be altered on the built-in broker"
	}
	if n.image().Topics[rr.ResourceName] == nil {
		return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %q does not exist", rr.ResourceName)
	}
	cmd := &meta.AlterConfigs{Topic: rr.ResourceName, Set: map[string]string{}}
	seen := map[string]bool{}
	for _, c := range rr.Configs {
		name := canonicalConfigName(c.Name)
		if seen[name] {
			return kerr.InvalidRequest.Code, fmt.Sprintf("config %q altered twice in one request", name)
		}
		seen[name] = true
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return kerr.InvalidConfig.Code, fmt.Sprintf("config %q: SET without a value", name)
			}
			if err := meta.ValidateConfig(name, *c.Value); err != nil {
				return kerr.InvalidConfig.Code, err.Error()
			}
			cmd.Set[name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			if !isKnownConfig(name) {
				return kerr.InvalidConfig.Code, fmt.Sprintf("unknown config %q", name)
			}
			cmd.Delete = append(cmd.Delete, name)
		default:
			return kerr.InvalidRequest.Code, fmt.Sprintf("config %q: operation %v is not supported (only SET and DELETE)", name, c.Op)
		}
	}
	if validateOnly {
		return 0, ""
	}
	pctx, cancel := n.requestContext(cc.ctx, 0)
	defer cancel()
	res, err := n.propose(pctx, meta.Command{AlterConfigs: cmd})
	if err != nil {
		return kerr.RequestTimedOut.Code, err.Error()
	}
	if res.ErrorCode != 0 {
		return res.ErrorCode, res.Message
	}
	if res.Topic != nil {
		want := res.Topic.Configs
		n.waitForImageWhere(pctx, func(im *meta.Image) bool {
			t := im.Topics[rr.ResourceName]
			if t == nil {
				return true
			}
			for k, v := range want {
				if t.Configs[k] != v {
					return false
				}
			}
			return true
		})
	}
	return 0, ""
}

// isKnownConfig reports whether name is a topic config the broker implements.
func isKnownConfig(name string) bool {
	for _, s := range topicConfigSpecs {
		if s.name == name {
			return true
		}
	}
	return false
}
