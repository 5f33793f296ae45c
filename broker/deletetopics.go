package broker

// DeleteTopics, versions 0-6 (v6 names topics by name or id). Deletion goes through the metadata quorum; the
// response is sent once this node's image no longer has the topic (its partitions are then deleted from
// disk on every replica as each applies the image).
// Deliberate difference: deletion is immediate (no "marked for deletion" phase).

import (
	"fmt"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.DeleteTopics, 0, 6, (*Node).handleDeleteTopics) }

func (n *Node) handleDeleteTopics(cc *connCtx, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := n.requestContext(cc.ctx, req.TimeoutMillis)
	defer cancel()
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, name := range req.TopicNames {
			targets = append(targets, target{name: &name})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.TopicID = tg.id
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			if req.Version >= 5 {
				st.ErrorMessage = &msg
			}
		}
		im := n.image()
		var t *meta.Topic
		switch {
		case tg.id != [16]byte{}:
			if t = topicByID(im, tg.id); t == nil {
				fail(kerr.UnknownTopicID.Code, fmt.Sprintf("no topic with id %x", tg.id))
			}
		case tg.name != nil:
			st.Topic = tg.name
			if t = im.Topics[*tg.name]; t == nil {
				fail(kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %q does not exist", *tg.name))
			}
		default:
			fail(kerr.InvalidRequest.Code, "neither a topic name nor an id")
		}
		if t != nil {
			name, id := t.Name, t.ID
			st.Topic, st.TopicID = &name, id
			res, err := n.propose(ctx, meta.Command{DeleteTopic: &meta.DeleteTopic{Name: name}})
			switch {
			case err != nil:
				fail(kerr.RequestTimedOut.Code, err.Error())
			case res.ErrorCode != 0:
				fail(res.ErrorCode, res.Message)
			default:
				n.waitForImageWhere(ctx, func(im *meta.Image) bool { t := im.Topics[name]; return t == nil || t.ID != id })
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
