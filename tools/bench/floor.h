// The floor under a replicated write's latency on this machine: how long one
// fdatasync of a freshly appended log block takes on a given file system, and how
// long one TCP round trip over 127.0.0.1 takes. A put acknowledged by a majority
// cannot be faster than the client's round trip plus one durable append, so these
// two figures say how far `rdb-bench` results are from what the hardware allows.
//
// Each measurement runs on the calling thread (the round trip adds one echo thread
// that it joins before returning) and owns every file and socket it opens; the
// file is removed and the sockets closed on every path. Not meant to run
// concurrently with load: it measures an otherwise idle machine.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "latency_histogram.h"
#include "rdb/result.h"

namespace rdb::bench {

// Appends `block_bytes` to a scratch file in `dir` and fdatasyncs it, again and again
// for `duration` (the file restarts from empty every 64 MiB). One sample per append+sync.
Result<LatencyHistogram> measure_fdatasync(const std::string& dir, std::chrono::nanoseconds duration,
                                           std::size_t block_bytes);

// Sends `message_bytes` to an echo thread over a loopback TCP connection (Nagle off on
// both ends) and waits for them to come back, for `duration`. One sample per round trip.
Result<LatencyHistogram> measure_loopback_rtt(std::chrono::nanoseconds duration, std::size_t message_bytes);

}  // namespace rdb::bench
