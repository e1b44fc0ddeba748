#include "confused_peer.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <random>

#include "raftsvc.grpc.pb.h"

namespace rdb::chaos {
namespace {

constexpr std::uint64_t kMaxTerm = std::uint64_t{1} << 62;

metapb::Region to_proto(const RegionInfo& r) {
  metapb::Region out;
  out.set_id(r.id);
  out.set_start_key(r.start_key);
  out.set_end_key(r.end_key);
  out.mutable_region_epoch()->set_conf_ver(r.conf_ver);
  out.mutable_region_epoch()->set_version(r.version);
  for (const auto& p : r.peers) {
    auto* peer = out.add_peers();
    peer->set_id(p.id);
    peer->set_store_id(p.store_id);
    peer->set_is_learner(p.is_learner);
  }
  return out;
}

class Maker {
 public:
  Maker(RegionInfo region, std::uint64_t seed) : region_(std::move(region)), proto_(to_proto(region_)), rng_(seed) {}

  std::uint64_t pick(std::uint64_t n) { return rng_() % n; }

  // A confused message for the peer on `store_id`.
  raftsvc::RaftMessage make(std::uint64_t store_id) {
    raftsvc::RaftMessage m;
    m.set_region_id(region_.id);
    PeerInfo to;
    PeerInfo from;
    for (const auto& p : region_.peers) {
      (p.store_id == store_id ? to : from) = p;
    }
    m.mutable_to_peer()->set_id(to.id);
    m.mutable_to_peer()->set_store_id(store_id);
    m.mutable_from_peer()->set_id(from.id);
    m.mutable_from_peer()->set_store_id(from.store_id);
    *m.mutable_region() = proto_;
    raftpb::Message& r = *m.mutable_message();
    r.set_to(to.id);
    r.set_from(from.id);
    r.set_type(raftpb::MSG_HEARTBEAT);
    r.set_term(1);  // bootstrapped regions start at term 5: term 1 is always stale
    switch (pick(10)) {
      case 0:  // a stale append, as from a leader long deposed
        r.set_type(raftpb::MSG_APP);
        r.set_index(5 + pick(100));
        r.set_log_term(1);
        r.set_commit(pick(1000));
        break;
      case 1:  // out-of-range terms
        r.set_term(pick(2) == 0 ? ~std::uint64_t{0} : kMaxTerm + 1);
        break;
      case 2:  // local-only types, and a proposal smuggled in from the network
        r.set_type(pick(2) == 0 ? raftpb::MSG_HUP : raftpb::MSG_PROP);
        r.set_term(0);
        r.add_entries()->set_data("confused");
        break;
      case 3:  // a read index request without its entry
        r.set_type(raftpb::MSG_READ_INDEX);
        r.set_term(0);
        break;
      case 4: {  // entries with a gap
        r.set_type(raftpb::MSG_APP);
        r.set_term(1 << 20);
        r.set_index(5);
        r.set_log_term(5);
        auto* e = r.add_entries();
        e->set_index(9);
        e->set_term(5);
        break;
      }
      case 5:  // a heartbeat committing far past any log
        r.set_term(1 << 20);
        r.set_commit(std::uint64_t{1} << 61);
        break;
      case 6:  // for another store
        m.mutable_to_peer()->set_store_id(store_id + 1000);
        break;
      case 7:  // for a peer id this store does not hold
        m.mutable_to_peer()->set_id(to.id + 1000);
        r.set_to(to.id + 1000);
        break;
      case 8:  // an unknown region, without metadata
        m.set_region_id(region_.id + 1000 + pick(1000));
        m.clear_region();
        break;
      default:  // an unknown region whose range overlaps the real one
        m.set_region_id(region_.id + 5000);
        m.mutable_region()->set_id(region_.id + 5000);
        break;
    }
    return m;
  }

 private:
  RegionInfo region_;
  metapb::Region proto_;
  std::mt19937_64 rng_;
};

// A snapshot stream whose files are not what the descriptor says (bytes that fail
// their CRC32), or that announces more than the disk could hold.
void send_bad_snapshot(raftsvc::Raft::Stub& stub, raftsvc::RaftMessage header, bool oversized,
                       std::uint64_t cluster_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  raftsvc::Done done;
  auto writer = stub.SendSnapshot(&ctx, &done);
  header.mutable_message()->set_type(raftpb::MSG_SNAP);
  auto* meta = header.mutable_message()->mutable_snapshot()->mutable_metadata();
  meta->set_index(1'000'000);
  meta->set_term(1);
  meta->mutable_conf_state()->add_voters(header.from_peer().id());
  const std::string junk = "\xff\xfe not a table";
  raftsvc::SnapshotDescriptor d;
  *d.mutable_region() = header.region();
  auto* f = d.add_files();
  f->set_cf("raw");
  f->set_size(oversized ? std::uint64_t{1} << 40 : junk.size());
  f->set_crc32(0);
  f->set_keys(1);
  header.mutable_message()->mutable_snapshot()->set_data(d.SerializeAsString());
  raftsvc::SnapshotChunk chunk;
  *chunk.mutable_message() = header;
  chunk.set_total_size(f->size());
  chunk.set_cluster_id(cluster_id);
  chunk.set_data(junk);
  (void)writer->Write(chunk);
  (void)writer->WritesDone();
  (void)writer->Finish();
}

}  // namespace

void ConfusedPeer::start(std::vector<Target> targets, RegionInfo region, std::uint64_t cluster_id, std::uint64_t seed) {
  stop();
  stopping_ = false;
  cluster_id_ = cluster_id;
  thread_ = std::thread([this, targets = std::move(targets), region = std::move(region), seed]() mutable {
    run(std::move(targets), std::move(region), seed);
  });
}

void ConfusedPeer::stop() {
  stopping_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ConfusedPeer::run(std::vector<Target> targets, RegionInfo region, std::uint64_t seed) {
  const std::uint64_t cluster_id = cluster_id_;
  Maker maker(std::move(region), seed);
  struct Stream {
    std::unique_ptr<raftsvc::Raft::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    raftsvc::Done done;
    std::unique_ptr<grpc::ClientWriter<raftsvc::RaftBatch>> writer;
  };
  std::map<std::uint64_t, Stream> streams;
  while (!stopping_) {
    const Target& t = targets[maker.pick(targets.size())];
    Stream& s = streams[t.store_id];
    if (!s.writer) {
      s.stub = raftsvc::Raft::NewStub(grpc::CreateChannel(t.address, grpc::InsecureChannelCredentials()));
      s.ctx = std::make_unique<grpc::ClientContext>();
      s.writer = s.stub->Send(s.ctx.get(), &s.done);
    }
    raftsvc::RaftBatch batch;
    // Mostly the right cluster, so the messages reach the stores' validation; now and
    // then another one (or none), which must close the stream.
    batch.set_cluster_id(maker.pick(10) == 0 ? maker.pick(2) * (cluster_id + 1) : cluster_id);
    for (int i = 0; i < 8; ++i) {
      auto m = maker.make(t.store_id);
      if (maker.pick(4) == 0) {
        *batch.add_messages() = m;  // duplicated
      }
      *batch.add_messages() = std::move(m);
    }
    sent_ += static_cast<std::uint64_t>(batch.messages_size());
    if (!s.writer->Write(batch)) {
      s.ctx->TryCancel();
      (void)s.writer->Finish();
      s.writer.reset();  // the store restarted or is paused: dial again
    }
    if (maker.pick(20) == 0) {
      send_bad_snapshot(*s.stub, maker.make(t.store_id), maker.pick(2) == 0, cluster_id);
      ++sent_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a steady trickle, not a flood
  }
  for (auto& [id, s] : streams) {
    if (s.writer) {
      (void)s.writer->WritesDone();
      s.ctx->TryCancel();
      (void)s.writer->Finish();
    }
  }
}

}  // namespace rdb::chaos
