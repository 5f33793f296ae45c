package broker

// Metadata, versions 0-12. Brokers listed are the registered, unfenced ones; a partition without a leader
// carries LEADER_NOT_AVAILABLE; OfflineReplicas lists assigned replicas that are not live. Topics may be
// named by id (v10+). Auto-creation follows auto.create.topics.enable (default false here, see
// TopicDefaults) and the request's AllowAutoTopicCreation; a created topic is returned in the same response.
// Deliberate differences: no ACLs (authorized operations are left at Kafka's "not requested" value -2147483648
// unless asked, then all operations), one rack-less listener per broker, cluster id "kafkatrial".

import (
	"context"
	"slices"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.Metadata, 0, 12, (*Node).handleMetadata) }

// clusterID is the cluster id every node reports.
const clusterID = "kafkatrial"

// allOperations is the authorized-operations bit set of "everything" (no ACLs here): bits 2..14.
const allOperations = int32(0x7ffc)

func (n *Node) handleMetadata(cc *connCtx, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	im := n.image()
	if im == nil {
		im = meta.Empty()
	}
	if req.Version >= 4 && req.AllowAutoTopicCreation || req.Version < 4 {
		im = n.autoCreate(cc.ctx, im, req)
	}
	for _, id := range sortedBrokerIDs(im) {
		b := im.Brokers[id]
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.ID, b.Host, b.Port
		resp.Brokers = append(resp.Brokers, mb)
	}
	cid := clusterID
	resp.ClusterID = &cid
	resp.ControllerID = n.meta.ctrl.ActiveID()
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = allOperations
	}
	all := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	if all {
		for _, name := range sortedTopicNames(im) {
			resp.Topics = append(resp.Topics, n.metadataTopic(im, im.Topics[name], req))
		}
		return resp, nil
	}
	seen := map[string]bool{}
	for _, rt := range req.Topics {
		var t *meta.Topic
		switch {
		case rt.TopicID != [16]byte{}:
			t = topicByID(im, rt.TopicID)
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID, mt.ErrorCode = rt.TopicID, kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		case rt.Topic != nil:
			t = im.Topics[*rt.Topic]
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic, mt.ErrorCode = rt.Topic, kerr.UnknownTopicOrPartition.Code
				if !validTopicName(*rt.Topic) {
					mt.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		default:
			continue
		}
		if seen[t.Name] {
			continue
		}
		seen[t.Name] = true
		resp.Topics = append(resp.Topics, n.metadataTopic(im, t, req))
	}
	return resp, nil
}

// metadataTopic describes one topic.
func (n *Node) metadataTopic(im *meta.Image, t *meta.Topic, req *kmsg.MetadataRequest) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic, mt.TopicID, mt.IsInternal = &name, t.ID, isInternalTopic(name)
	if req.IncludeTopicAuthorizedOperations {
		mt.AuthorizedOperations = allOperations
	}
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader, mp.LeaderEpoch = p.Partition, p.Leader, p.LeaderEpoch
		mp.Replicas, mp.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
		mp.OfflineReplicas = []int32{}
		for _, r := range p.Replicas {
			if !im.Live(r) {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if p.Leader == meta.NoLeader {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// autoCreate creates the requested topics that do not exist when auto.create.topics.enable is on, and
// returns the image that has them.
func (n *Node) autoCreate(ctx context.Context, im *meta.Image, req *kmsg.MetadataRequest) *meta.Image {
	if !n.cfg.Defaults.AutoCreateTopicsEnable {
		return im
	}
	var last int64 = -1
	for _, rt := range req.Topics {
		if rt.Topic == nil || im.Topics[*rt.Topic] != nil || !validTopicName(*rt.Topic) {
			continue
		}
		res, err := n.createTopic(ctx, *rt.Topic, -1, -1, nil)
		if err != nil || res.ErrorCode != 0 {
			n.log.Info("auto-creating a topic failed", "topic", *rt.Topic, "err", err, "code", res.ErrorCode)
			continue
		}
		last = n.image().Offset
	}
	if last < 0 {
		return im
	}
	return n.image()
}

func sortedBrokerIDs(im *meta.Image) []int32 {
	var ids []int32
	for id, b := range im.Brokers {
		if !b.Fenced {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func sortedTopicNames(im *meta.Image) []string {
	names := make([]string, 0, len(im.Topics))
	for name := range im.Topics {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func topicByID(im *meta.Image, id [16]byte) *meta.Topic {
	for _, t := range im.Topics {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// validTopicName is Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], not "." or "..".
func validTopicName(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
