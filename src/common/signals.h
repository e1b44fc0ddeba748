// Clean-shutdown plumbing for the daemons.
//
// block_shutdown_signals() must run in main() before any other thread is
// created, so every thread inherits the blocked mask and SIGINT/SIGTERM are
// delivered only to the thread that calls wait_for_shutdown_signal().
#pragma once

namespace rdb {

void block_shutdown_signals();

// Blocks until SIGINT or SIGTERM arrives; returns the signal number.
int wait_for_shutdown_signal();

}  // namespace rdb
