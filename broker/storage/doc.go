// Package storage is the durable storage of one broker node: the Disk every file of a node goes through
// (so a simulated power loss drops exactly what was never fsynced), the Kafka record batch v2 header
// utilities, and the partition Log (segments, sparse offset index, leader-epoch checkpoint, recovery).
//
// Durability model. A Disk tracks, per path, the length last fsynced. File.Sync records the size the file had
// when the fsync began; File.Truncate lowers it to min(synced, new size); a file created and never synced has
// synced length 0; WriteFileAtomic records its new file as fully synced. LoseUnsynced (a power loss) cuts every
// tracked file back to its synced length. A process kill loses nothing: closing a File does not fsync, and
// the bytes stay in the page cache as they would in life. Directory entries are modelled simply: creating,
// renaming and removing a file, and shrinking one, are durable the moment the call returns, as if the
// directory had been fsynced right after. So a file created and never synced survives a power loss as an
// empty file rather than vanishing, and a removed file never comes back. Overwrites inside the synced length
// (WriteAt below it) are kept as written: only lengths are modelled, not torn sectors.
//
// Hot path. Record batches stay raw bytes: the Log patches the base offset and partition leader epoch in the
// header (both outside the CRC), checks the CRC-32C, writes the caller's buffer to the segment file and serves
// reads with one ReadAt into the returned buffer. Individual records are never decoded there: only a search by
// timestamp (FindOffsetByTimestamp, MaxTimestampOffset, for ListOffsets) reads records, decompressing them,
// and only in the one batch where the time index and the batch headers say the answer lies.
//
// This package must never: decide to lose, duplicate or reorder data based on a setting (losses come only
// from LoseUnsynced cutting unsynced bytes, and from recovery cutting what is torn or corrupt); touch files
// outside its Disk root; import anything of the broker above it, or the workloads, checker or nemesis.
package storage
