// Package workloads owns the producers and consumers that drive a trial: real franz-go clients configured by
// Kafka setting names, recording every operation into a history.
//
// It must never decide an outcome itself: what it records is what the client library reported.
package workloads
