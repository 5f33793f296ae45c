package broker

// ApiVersions, versions 0-4. The response lists exactly the versions registered in the dispatch table, so a
// client negotiates only what this node serves fully. An unsupported ApiVersions version is answered by the
// server (server.go) with a v0 body and UNSUPPORTED_VERSION, as Kafka does. No features are advertised:
// the built-in cluster has no finalized feature levels (deliberate difference; clients treat an empty list
// as "no features").

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { registerHandler(kmsg.ApiVersions, 0, 4, (*Node).handleApiVersions) }

func (n *Node) handleApiVersions(cc *connCtx, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	return apiVersionsResponse(req.Version), nil
}

// apiVersionsResponse lists every registered handler's version range.
func apiVersionsResponse(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	for _, h := range handlers {
		if h == nil {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = h.key, h.minVersion, h.maxVersion
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}
