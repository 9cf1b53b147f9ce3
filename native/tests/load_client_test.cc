// LoadClient (the bench load generator): option checks, and an ingest run against a
// minimal blocking WebSocket peer written here, which checks the upgrade request and
// decodes every frame with the server-side MessageReader: each must unmask to the
// configured pub frame, and the frames the client counts as sent must all arrive.
#include "io/load_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "ws/frame.h"

using namespace myelin;
using namespace myelin::io;

namespace {

int Listen(uint16_t* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  listen(fd, 64);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

const char kResponse[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

// One connection's peer: answers the upgrade, then decodes frames until EOF.
void Peer(int fd, const std::string& want, std::atomic<uint64_t>* frames, std::atomic<uint64_t>* bad) {
  std::string head;
  char buf[65536];
  while (head.find("\r\n\r\n") == std::string::npos) {
    const ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) return void(close(fd));
    head.append(buf, static_cast<std::size_t>(r));
  }
  if (head.rfind("GET /ws HTTP/1.1\r\n", 0) != 0 || head.find("Sec-WebSocket-Version: 13") == std::string::npos)
    bad->fetch_add(1);
  if (write(fd, kResponse, sizeof kResponse - 1) < 0) bad->fetch_add(1);
  ws::ReaderLimits limits;
  ws::MessageReader reader(&limits);
  std::vector<uint8_t> pending(head.begin() + static_cast<std::ptrdiff_t>(head.find("\r\n\r\n") + 4), head.end());
  for (;;) {
    std::size_t off = 0;
    for (;;) {
      std::size_t used = 0;
      ws::Message m{};
      uint16_t code = 0;
      const auto res = reader.Read(pending.data() + off, pending.size() - off, &used, &m, &code);
      off += used;
      if (res == ws::MessageReader::Result::kNeedMore) break;
      if (res == ws::MessageReader::Result::kError) {
        bad->fetch_add(1);
        return void(close(fd));
      }
      if (std::string(reinterpret_cast<const char*>(m.data), m.len) != want) bad->fetch_add(1);
      frames->fetch_add(1);
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(off));
    const ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) break;
    pending.insert(pending.end(), buf, buf + r);
  }
  close(fd);
}

}  // namespace

TEST(CreateRefusesBadOptions) {
  std::unique_ptr<LoadClient> c;
  LoadOptions o;
  o.port = 9;
  o.pub_frame = "{}";
  CHECK(LoadClient::Create(o, &c) == Status::kOk);
  LoadOptions none = o;
  none.connections = 0;
  CHECK(LoadClient::Create(none, &c) == Status::kInvalidArgument);
  LoadOptions no_frame = o;
  no_frame.pub_frame.clear();
  CHECK(LoadClient::Create(no_frame, &c) == Status::kInvalidArgument);
  LoadOptions host = o;
  host.host = "not a host";
  CHECK(LoadClient::Create(host, &c) == Status::kInvalidArgument);
  LoadOptions lat = o;
  lat.mode = LoadMode::kLatency;
  lat.sub_frame = "{}";
  lat.pub_prefix = "{\"t\":";
  lat.rate = 0;
  CHECK(LoadClient::Create(lat, &c) == Status::kInvalidArgument);
  lat.rate = 100;
  CHECK(LoadClient::Create(lat, &c) == Status::kOk);
  LoadOptions no_port = o;
  no_port.port = 0;
  CHECK(LoadClient::Create(no_port, &c) == Status::kInvalidArgument);
}

TEST(IngestFramesArriveMaskedAndCounted) {
  uint16_t port = 0;
  const int lfd = Listen(&port);
  const std::string frame = "{\"op\":\"pub\",\"subject\":\"bench.x\",\"data\":{\"n\":1}}";
  constexpr uint32_t kConns = 4;
  std::atomic<uint64_t> frames{0}, bad{0};
  std::vector<std::thread> peers;
  std::thread acceptor([&] {
    for (uint32_t i = 0; i < kConns; ++i) {
      const int fd = accept(lfd, nullptr, nullptr);
      if (fd < 0) return;
      peers.emplace_back(Peer, fd, frame, &frames, &bad);
    }
  });
  LoadOptions o;
  o.port = port;
  o.connections = kConns;
  o.batch = 8;
  o.pub_frame = frame;
  std::unique_ptr<LoadClient> c;
  CHECK(LoadClient::Create(o, &c) == Status::kOk);
  std::thread run([&] { c->Run(0); });
  for (int i = 0; i < 500 && c->Stats().phase != LoadPhase::kReady; ++i) usleep(10000);
  CHECK(c->Stats().phase == LoadPhase::kReady);
  CHECK_EQ(c->Stats().upgraded, uint64_t{kConns});
  c->Go(200, 0);
  for (int i = 0; i < 500 && c->Stats().phase != LoadPhase::kDone; ++i) usleep(10000);
  CHECK(c->Stats().phase == LoadPhase::kDone);
  const uint64_t sent = c->Stats().sent;
  CHECK(sent > 0);
  CHECK_EQ(sent % 8, uint64_t{0});
  c->Stop();
  run.join();
  c.reset();  // closes the sockets: the peers read EOF
  acceptor.join();
  for (auto& t : peers) t.join();
  close(lfd);
  CHECK_EQ(bad.load(), uint64_t{0});
  CHECK_EQ(frames.load(), sent);
}
