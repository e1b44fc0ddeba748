// TcpRaftTransport: Raft traffic between stores on plain TCP, served by the store's Raft loop.
//
// Why not gRPC: on gRPC's callback API every batch costs thread hand-offs at both ends
// (gRPC's two poller threads pass the polling role to each other, then the reading one
// hands the batch to the Raft thread), and at moderate load those wake-ups are most of a
// store's CPU per put (docs/performance.md). Here the Raft loop waits in epoll on this
// transport's sockets (LoopPoller): an arriving batch wakes the one thread that handles
// it, and the loop writes outgoing batches to the socket itself.
//
// Sending: one connection per destination store, opened by a connector thread that
// resolves the store's Raft address (through PD) and connects — both may block, so never on
// the loop. send() frames the messages (raft_frame.h) and writes them at once when the
// socket takes them; the rest waits in the connection's buffer and leaves when the socket
// is writable again (the loop polls for that). Buffers are bounded (max_buffer_bytes, and
// max_pending_messages while connecting): past them messages are dropped, as Raft
// retransmits what matters. A store that has no Raft address (one on gRPC only, e.g. with
// TLS) is reached through `fallback`, which also carries every snapshot. A broken connection
// is re-opened after a back-off (100 ms, doubling to 2 s), re-resolving the address.
//
// Receiving: the listener and every accepted connection are served on the loop thread.
// A frame is checked — magic, length at most max_frame_bytes, a RaftBatch that parses, of
// this store's cluster — before its messages reach RaftStore::deliver (which checks each
// message); a bad frame closes its connection. At most max_incoming connections are kept;
// more are closed as they arrive. Plaintext only: stores using TLS keep Raft on gRPC.
//
// Thread safety: send(), send_snapshot() and wake() from any thread; wait() and serve()
// on the store's loop thread only; set_receiver()/set_cluster_id() before traffic flows. The
// destructor joins the connector and closes every socket; the store's loop must be stopped.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/limits.h"
#include "common/result.h"
#include "server/raft_frame.h"
#include "server/raft_store.h"

namespace rdb {

class TcpRaftTransport final : public RaftTransport, public LoopPoller {
 public:
  struct Options {
    std::size_t max_frame_bytes = kMaxGrpcMessageBytes;    // one received batch, at most
    std::size_t max_batch_bytes = std::size_t{8} << 20;    // one sent batch (a larger message goes alone)
    std::size_t max_buffer_bytes = std::size_t{64} << 20;  // unsent bytes per destination
    std::size_t max_pending_messages = 8192;               // per destination while connecting
    std::size_t max_incoming = 64;                         // accepted connections kept
    std::chrono::milliseconds connect_timeout{1000};
    // A store found without a Raft address is asked again after this long.
    std::chrono::milliseconds fallback_recheck{10'000};
  };
  // Store id -> its Raft address ("host:port"), or "" when it has none (reached through
  // the fallback transport).
  using RaftAddressResolver = std::function<Result<std::string>(std::uint64_t store_id)>;

  // Listens on `listen_addr` ("host:port"; port 0 picks one). INVALID_ARGUMENT for a bad
  // address, UNAVAILABLE when it cannot be bound.
  static Result<std::unique_ptr<TcpRaftTransport>> listen(const std::string& listen_addr, RaftAddressResolver resolver,
                                                          RaftTransport& fallback, Options options);
  static Result<std::unique_ptr<TcpRaftTransport>> listen(const std::string& listen_addr, RaftAddressResolver resolver,
                                                          RaftTransport& fallback) {
    return listen(listen_addr, std::move(resolver), fallback, Options{});
  }
  ~TcpRaftTransport() override;
  TcpRaftTransport(const TcpRaftTransport&) = delete;
  TcpRaftTransport& operator=(const TcpRaftTransport&) = delete;

  // The port actually listened on.
  std::uint16_t port() const { return port_; }
  // Where received messages go (RaftStore::deliver), and where a refused frame or
  // connection is reported (RaftStore::dropped_messages()). Loop thread.
  struct Receiver {
    std::function<void(raftsvc::RaftMessage)> deliver;
    std::function<void(const raft::Rejection&)> refused;
  };
  void set_receiver(Receiver receiver) { receiver_ = std::move(receiver); }
  // The store's deliver() and dropped_messages().
  void set_store(RaftStore& store);
  // Stamped on every batch sent; a received batch of another cluster is refused. Until it
  // is set every received batch is refused.
  void set_cluster_id(std::uint64_t id) { cluster_id_ = id; }

  void send(std::vector<raftsvc::RaftMessage> messages) override;
  // Snapshots travel through the fallback (the gRPC transport streams their files).
  void send_snapshot(raftsvc::RaftMessage message, std::vector<std::string> files,
                     std::function<void(bool)> done) override;

  void wait(std::chrono::milliseconds timeout) override;
  void serve() override;
  void wake() override;

  // Messages framed for a connection / delivered from one (TCP only, not the fallback's).
  std::uint64_t sent() const { return sent_.load(); }
  std::uint64_t received() const { return received_.load(); }
  // Messages dropped on the sending side (buffers full, a message over a frame's size).
  std::uint64_t dropped() const { return dropped_.load(); }
  // Connections closed for a bad frame or another cluster's traffic.
  std::uint64_t refused_connections() const { return refused_.load(); }
  // Accepted connections open now (loop thread's view; for tests).
  std::size_t incoming_connections() const { return incoming_count_.load(); }

 private:
  struct Endpoint {
    enum class Kind { kWake, kListener, kIncoming, kOutgoing };
    explicit Endpoint(Kind k) : kind(k) {}
    Kind kind;
  };
  struct Outgoing;
  struct Incoming;
  using Clock = std::chrono::steady_clock;

  TcpRaftTransport(RaftAddressResolver resolver, RaftTransport& fallback, Options options);
  Outgoing& outgoing(std::uint64_t store_id);
  // Under o.mu: frames `messages` into o's buffer (dropping what does not fit).
  void frame_locked(Outgoing& o, std::vector<raftsvc::RaftMessage>& messages);
  // Under o.mu: writes what the socket takes; asks the loop to poll for writability when
  // some is left; closes the connection when the socket failed.
  void flush_locked(Outgoing& o);
  void close_locked(Outgoing& o);
  void connect_loop();
  void connect_one(Outgoing& o);
  void accept_all();
  void read_incoming(Incoming& in);
  void close_incoming(Incoming& in);
  void serve_outgoing(Outgoing& o, std::uint32_t events);
  void request_connect();

  RaftAddressResolver resolver_;
  RaftTransport& fallback_;
  Options options_;
  Receiver receiver_;
  std::atomic<std::uint64_t> cluster_id_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::size_t> incoming_count_{0};

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  Endpoint wake_endpoint_{Endpoint::Kind::kWake};
  Endpoint listen_endpoint_{Endpoint::Kind::kListener};

  // Loop thread only.
  static constexpr int kMaxEvents = 64;
  struct ReadyEvent {
    Endpoint* endpoint;
    std::uint32_t events;
  };
  std::vector<ReadyEvent> ready_;
  std::vector<std::unique_ptr<Incoming>> incoming_;
  std::vector<char> read_buf_;

  // Guards the map of destinations and the connector's wake-up.
  std::mutex mu_;
  std::condition_variable connect_cv_;
  bool connect_wanted_ = false;
  bool stopping_ = false;
  std::map<std::uint64_t, std::unique_ptr<Outgoing>> outgoing_;
  std::thread connector_;
};

}  // namespace rdb
