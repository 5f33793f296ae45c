# The test command of the README and CI: every test under the race detector, then each fuzz target briefly
# (the decoders of untrusted bytes: Kafka frames, record batches and the records inside them, histories, the
# stores' recovery, offset commit records, the producers' reading of broker answers).
FUZZTIME ?= 10s
FUZZCOUNT_SLOW ?= 3000x
GO ?= go

.PHONY: test unit fuzz bench claims

test: unit fuzz

unit:
	$(GO) test -race -timeout 40m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRequestDecoding$$' -fuzztime $(FUZZTIME) ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzSplitBatches$$' -fuzztime $(FUZZTIME) ./broker/storage
	$(GO) test -run '^$$' -fuzz '^FuzzForEachRecord$$' -fuzztime $(FUZZTIME) ./broker/storage
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) ./history
	# A slow target (file I/O per input): a count, not a time, since Go's fuzzer can report its own time limit
	# ("context deadline exceeded") as a failure when a worker is mid-input at the deadline.
	$(GO) test -run '^$$' -fuzz '^FuzzFileStoreRecover$$' -fuzztime $(FUZZCOUNT_SLOW) ./broker/group
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeLogs$$' -fuzztime $(FUZZTIME) ./broker/controller
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) ./broker/controller
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeOffsetCommitBatch$$' -fuzztime $(FUZZTIME) ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzAnswers$$' -fuzztime $(FUZZTIME) ./workloads

# Benchmarks that compare against a reference in the same run (kfake, plain files, plain sockets).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# The main job: the bundled claims suite on the built-in cluster.
claims:
	$(GO) run ./cmd/kafkatrial suite claims --out out/claims --junit out/claims/junit.xml
