// Issue 16, "a multi-core server" (docs/design.md, "Multi-core"): how a server uses N cores.
// N contexts ("shards"), each with its own io_context run by its own thread, listen on the
// same addresses and ports with SO_REUSEPORT (context_config::reuse_port): the kernel hashes
// each datagram's 4-tuple to one shard's UDP or DTLS socket, so a peer's session, its
// deduplication entries and its observations live in one shard and are only ever touched by
// that shard's thread; TCP and TLS connections are spread over the shards' listeners the same
// way. Nothing on the message path is shared or locked. What crosses shards is posted to each
// shard's executor: notify_observers (a resource changed on any thread) and post_each.
//
//   coap::shard_group group(2);
//   std::uint16_t port = 5683;
//   group.setup([&](coap::context& ctx, std::size_t) {
//     ctx.add_resource("time").on(...).observable();
//     return ctx.add_endpoint<coap::udp>(address, port, &port);  // port 0: shard 0 picks it
//   });
//   group.start();
//   ...                        // from any thread: group.notify_observers("time");
//   group.stop();
//
// The library starts no thread of its own anywhere else; this group is the one place that
// does, because running the shards is its whole purpose.
#pragma once

#include <coap/context.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace coap {

template <class Context = context>
class basic_shard_group {
 public:
  using context_type = Context;

  // `n` shards (at least one), each a Context with `config` (reuse_port turned on) on an
  // io_context of its own. No thread runs until start().
  explicit basic_shard_group(std::size_t n, context_config config = {}) {
    config.reuse_port = true;
    shards_.reserve(n ? n : 1);
    for (std::size_t i = 0; i < (n ? n : 1); ++i) shards_.push_back(std::make_unique<shard>(config));
  }
  basic_shard_group(const basic_shard_group&) = delete;
  basic_shard_group& operator=(const basic_shard_group&) = delete;
  // Stops and joins. Whatever setup() made that the shards' handlers use must outlive this.
  ~basic_shard_group() { stop(); }

  [[nodiscard]] std::size_t size() const noexcept { return shards_.size(); }
  // The shard's context. Before start() and after stop() any thread may use it; in between,
  // only that shard's thread (post_each, or a handler running there).
  Context& operator[](std::size_t i) noexcept { return *shards_[i]->ctx; }
  boost::asio::io_context& io_context(std::size_t i) noexcept { return shards_[i]->io; }

  // Before start(): calls setup(context&, index) for each shard in index order on this
  // thread, stopping at the first error it returns. Each shard must get the same endpoints
  // (same addresses and ports) and the same resources: a peer may be hashed to any of them.
  template <class Setup>
  std::error_code setup(Setup&& setup) {
    for (std::size_t i = 0; i < shards_.size(); ++i)
      if (std::error_code ec = setup(*shards_[i]->ctx, i)) return ec;
    return {};
  }

  // One thread per shard runs its io_context until stop(). Once only.
  void start() {
    if (started_) return;
    started_ = true;
    for (auto& s : shards_) {
      s->work.emplace(s->io.get_executor());  // an idle shard waits for its peers
      s->thread = std::thread([&io = s->io] { io.run(); });
    }
  }

  // Runs fn(context&, index) on every shard's thread; returns at once. Any thread may call it.
  // fn is copied once per shard; what it shares between shards it must synchronize itself.
  template <class F>
  void post_each(const F& fn) {
    for (std::size_t i = 0; i < shards_.size(); ++i)
      boost::asio::post(shards_[i]->io, [fn, i, &ctx = *shards_[i]->ctx]() mutable { fn(ctx, i); });
  }

  // RFC 7641 across shards: every shard's observers of `path` get its current representation
  // (each shard runs its own GET handler, with its own sequence number). From any thread,
  // a shard's handler included: the notifications go after it has returned.
  void notify_observers(std::string path) {
    post_each([path = std::move(path)](Context& ctx, std::size_t) { ctx.notify_observers(path); });
  }

  // Each shard closes its endpoints and sessions on its own thread, then its io_context stops
  // (pending handlers are destroyed, not run); the threads are joined. Idempotent. Not from a
  // shard's own thread: it would wait for itself.
  void stop() {
    if (!started_) {
      for (auto& s : shards_) s->ctx->stop();
      return;
    }
    if (stopped_) return;
    stopped_ = true;
    for (auto& s : shards_)
      boost::asio::post(s->io, [&s = *s] {
        s.ctx->stop();
        s.work.reset();
        s.io.stop();
      });
    for (auto& s : shards_) s->thread.join();
  }

 private:
  struct shard {
    explicit shard(const context_config& config) { ctx.emplace(io.get_executor(), config); }
    // Destroyed in reverse: the thread (joined), the io_context (its pending handlers release
    // the endpoints and sessions they hold, which still refer to the context), the context.
    std::optional<Context> ctx;
    boost::asio::io_context io{1};  // one thread: Asio may skip its locking
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;
  };

  std::vector<std::unique_ptr<shard>> shards_;
  bool started_ = false;
  bool stopped_ = false;
};

using shard_group = basic_shard_group<>;

}  // namespace coap
