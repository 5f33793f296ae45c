// Package workloads owns the producers and consumers that drive a trial: real franz-go clients configured by
// Kafka setting names, recording every operation into a history (see shared/design/contract.md).
//
// It must never decide an outcome itself: what it records is what the client library reported and what the
// wire carried. No code here looks at a setting to lose, duplicate or reorder data. It never imports the broker,
// the nemesis or the checker; faults reach the clients only through the DialFunc a scenario passes in.
//
// # What the scenarios runner calls
//
//	rec := workloads.NewRecorder(historyWriter)           // process numbers + appends
//	p, _ := workloads.NewProducer(rec, seeds, producerCfg) // DefaultProducerConfig(topic, partitions), Set(key, value)
//	go p.Run(ctx)                                          // sends until ctx ends or Count sends
//	p.Crash()                                              // process death; restart = NewProducer (new process)
//	p.Close(ctx)                                           // clean end: every send completes
//	c, _ := workloads.NewConsumer(rec, seeds, consumerCfg) // DefaultConsumerConfig(group, topics...), Set(key, value)
//	go c.Run(ctx); c.Crash(); c.Close()
//	workloads.FinalRead(ctx, rec, seeds, FinalReadConfig{Topics: ...}) // after heal
//
// # Finding a moved leader (retry.backoff.ms)
//
// Both clients take Kafka's retry.backoff.ms (100ms) and retry.backoff.max.ms (1s): failed requests are
// retried after an exponential, jittered wait between the two, and metadata is refreshed at most once per
// retry.backoff.ms (kgo.MetadataMinAge), as Kafka's clients do. franz-go's own limit is one refresh per 5s,
// which left a sync producer stalled about five seconds after every leader change while the built-in cluster
// had elected the new leader in under one; BenchmarkLeaderKillGap measures both in one run.
//
// # Recording
//
// Every operation is an invoke followed by exactly one completion from the same process. Sends of one
// producer may overlap (async producer); every other op of a process completes before its next begins. A
// consumer's poll is the only op left open across a blocking call; a rebalance or auto-commit the client reports
// from another goroutine meanwhile closes that poll as an empty ok, is recorded, and the poll is reopened.
// Ops the client reports after the fact (rebalances, commits, processing) are recorded as an invoke immediately
// followed by the completion.
//
// # Send outcomes
//
// A send completes ok (with the offset; -1 with acks=0, where the broker never says) when the client reports
// success. Otherwise the wire tap (wire.go) has counted how many produce requests written to a socket carried
// the record, since franz-go's errors alone do not say whether a record left the client:
//
//   - written by no request: fail, whatever the error (nothing reached a broker), once the client can no longer
//     write it: franz-go may still send a request it serialized just before failing the record, so such a
//     failure is held until every connection has written a newer record, or the client closed (unsure.go).
//   - the error matches an info row below: info (an info row wins: kgo wraps the last broker error in its own).
//   - the error matches a fail row and the broker answered every request that carried the record with a
//     rejection before the append (the tap reads the answers too): fail. franz-go fails every record it holds for
//     a partition when one batch is rejected, batches already in flight (and perhaps appended) included, so the
//     error alone proves nothing about a record.
//   - anything else (unknown error, an attempt without such an answer, a request or answer the tap could not
//     parse): info.
//
// The rows (sendRules in errors.go; a test keeps the two identical):
//
//	| error                                | type | why |
//	| kgo.ErrRecordTimeout                 | info | delivery.timeout.ms passed; an attempt may have been written |
//	| kgo.ErrRecordRetries                 | info | retries exhausted; an earlier attempt may have been written |
//	| kgo.ErrAborting                      | info | buffered records aborted; a sent batch may have been written |
//	| kgo.ErrClientClosed                  | info | client closed with the request in flight |
//	| context.Canceled                     | info | canceled after the record may have been sent |
//	| context.DeadlineExceeded             | info | deadline passed after the record may have been sent |
//	| kerr.RequestTimedOut                 | info | the leader timed out waiting for replicas; the batch is in its log |
//	| kerr.NotEnoughReplicasAfterAppend    | info | appended to the leader, too few replicas acknowledged |
//	| kerr.NotLeaderForPartition           | info | NOT_LEADER_OR_FOLLOWER: leadership moved, possibly after the append |
//	| kerr.LeaderNotAvailable              | info | no leader; treated like NOT_LEADER_OR_FOLLOWER |
//	| kerr.FencedLeaderEpoch               | info | the leader epoch moved during the request |
//	| kerr.NetworkException                | info | the broker lost a connection while handling the request |
//	| kerr.KafkaStorageError               | info | the log directory failed during the append |
//	| kerr.UnknownServerError              | info | unexpected broker error |
//	| kgo.ErrMaxBuffered                   | fail | refused before buffering |
//	| kerr.NotEnoughReplicas               | fail | ISR below min.insync.replicas: rejected before the append |
//	| kerr.MessageTooLarge                 | fail | batch larger than max.message.bytes: rejected |
//	| kerr.RecordListTooLarge              | fail | request too large: rejected |
//	| kerr.CorruptMessage                  | fail | CRC or format check failed: rejected |
//	| kerr.InvalidRecord                   | fail | record validation failed: rejected |
//	| kerr.InvalidTimestamp                | fail | timestamp out of range: rejected |
//	| kerr.InvalidRequiredAcks             | fail | bad acks value: rejected |
//	| kerr.UnknownTopicOrPartition         | fail | the broker does not host the partition: rejected |
//	| kerr.TopicAuthorizationFailed        | fail | not authorized: rejected |
//	| kerr.ClusterAuthorizationFailed      | fail | not authorized: rejected |
//	| kerr.OutOfOrderSequenceNumber        | fail | idempotent sequence gap: rejected |
//	| kerr.InvalidProducerEpoch            | fail | fenced producer epoch: rejected |
//	| kerr.UnknownProducerID               | fail | unknown producer id: rejected |
//
// Commits: a response with a per-partition error code is fail for that partition (the coordinator refused it),
// except REQUEST_TIMED_OUT and UNKNOWN_SERVER_ERROR (info); a commit request without a response is info.
//
// # Producer crash
//
// Crash cuts every connection of the client at once (the wire refuses further writes and reads, and waits for
// a write in progress to finish being counted), then closes the client, which fails everything still buffered
// with ErrClientClosed. A record whose every byte stayed in the client is then certainly not written: it
// completes fail and is counted in the crash op's Buffered. A record the wire saw leave completes info (or fail
// by the rows above). The crash op is recorded after every outstanding send completed.
//
// # Consumer commit strategies (commit.strategy)
//
//	auto            enable.auto.commit=true; kgo commits what earlier polls returned every
//	                auto.commit.interval.ms; each commit it makes is recorded (AutoCommitCallback).
//	after-process   process, then a synchronous commit of the processed offsets (at-least-once).
//	async           process, then an asynchronous commit (recorded when it completes).
//	before-process  a synchronous commit of the polled offsets, then process (at-most-once).
//	direct          results and next offsets stored together in one atomic write of the consumer's ResultStore;
//	                a (re)started consumer assigns every partition at the store's offsets (never the broker's).
//
// processing=inline processes each poll before the next; processing=buffered hands polls to an in-memory buffer
// a worker drains (the receiver style). Crash cuts the connections first, so nothing more is committed, and
// drops the buffer.
package workloads
