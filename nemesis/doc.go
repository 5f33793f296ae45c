// Package nemesis owns faults and their schedules: one file per fault kind, scripted timelines and seeded
// random plans, acting on a small interface of the cluster (kill, restart, pause, partition, heal,
// lose-unsynced, who-leads). It records every fault start and stop for nemesis.jsonl.
//
// It must never reach into a broker's state: faults act where they act in life, on connections, processes and
// storage.
package nemesis
