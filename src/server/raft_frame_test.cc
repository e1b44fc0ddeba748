#include "server/raft_frame.h"

#include <gtest/gtest.h>

#include <random>

namespace rdb {
namespace {

raftsvc::RaftBatch batch_of(int n, std::uint64_t cluster, std::size_t payload = 16) {
  raftsvc::RaftBatch b;
  b.set_cluster_id(cluster);
  for (int i = 0; i < n; ++i) {
    auto* m = b.add_messages();
    m->set_region_id(static_cast<std::uint64_t>(i) + 1);
    m->mutable_message()->set_index(static_cast<std::uint64_t>(i));
    m->mutable_message()->add_entries()->set_data(std::string(payload, 'x'));
  }
  return b;
}

TEST(RaftFrameTest, FramesArriveWholeWhateverTheReadSizes) {
  std::string stream;
  for (int i = 0; i < 20; ++i) {
    append_raft_frame(batch_of(i % 4 + 1, 7, static_cast<std::size_t>(i) * 100), stream);
  }
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  RaftFrameReader reader(1 << 20);
  raftsvc::RaftBatch got;
  int frames = 0;
  std::size_t at = 0;
  while (at < stream.size()) {
    std::size_t n = std::min<std::size_t>(stream.size() - at, rng() % 300 + 1);
    reader.append(std::string_view(stream).substr(at, n));
    at += n;
    for (;;) {
      auto r = reader.next(got);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      if (!*r) {
        break;
      }
      EXPECT_EQ(got.cluster_id(), 7U);
      EXPECT_EQ(got.messages_size(), frames % 4 + 1);
      EXPECT_EQ(got.messages(0).message().entries(0).data().size(), static_cast<std::size_t>(frames) * 100);
      ++frames;
    }
  }
  EXPECT_EQ(frames, 20);
  EXPECT_EQ(reader.buffered(), 0U);
}

TEST(RaftFrameTest, BadMagicOversizeAndGarbageAreRefused) {
  raftsvc::RaftBatch got;
  RaftFrameReader http(1 << 20);
  http.append("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = http.next(got);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("magic"), std::string::npos) << r.status().to_string();

  RaftFrameReader small(100);
  std::string big;
  append_raft_frame(batch_of(1, 1, 1000), big);
  small.append(std::string_view(big).substr(0, kRaftFrameHeaderBytes));  // the header alone is enough to refuse
  r = small.next(got);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("over the limit"), std::string::npos) << r.status().to_string();

  RaftFrameReader junk(1 << 20);
  std::string frame = std::string("RDBT") + std::string("\x05\x00\x00\x00", 4) + "\xff\xff\xff\xff\xff";
  junk.append(frame);
  r = junk.next(got);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("not a RaftBatch"), std::string::npos) << r.status().to_string();

  RaftFrameReader partial(1 << 20);
  partial.append(std::string_view(big).substr(0, big.size() - 1));
  r = partial.next(got);
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(*r) << "a frame missing its last byte is not taken";
}

}  // namespace
}  // namespace rdb
