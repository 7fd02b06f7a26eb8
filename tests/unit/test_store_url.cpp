// store.url: every accepted form, and a clear refusal (without the password) otherwise.
#include <catch2/catch.hpp>

#include "core/store_url.hpp"

using namespace cltoken;
using T = RedisUrl::Transport;

namespace {
RedisUrl ok(std::string_view text) {
  std::string error;
  auto u = parse_redis_url(text, error);
  INFO(text << ": " << error);
  REQUIRE(u);
  return std::move(*u);
}
std::string refused(std::string_view text) {
  std::string error;
  auto u = parse_redis_url(text, error);
  INFO(text);
  REQUIRE_FALSE(u);
  return error;
}
} // namespace

TEST_CASE("redis URLs: TCP, TLS and Unix sockets") {
  auto plain = ok("redis://127.0.0.1:6379/0");
  CHECK(plain.transport == T::tcp);
  CHECK(plain.host == "127.0.0.1");
  CHECK(plain.port == "6379");
  CHECK(plain.db == 0);
  CHECK_FALSE(plain.password);
  CHECK(plain.redacted == "redis://127.0.0.1:6379/0");

  auto defaults = ok("redis://cache.internal");
  CHECK(defaults.port == "6379");
  CHECK(defaults.db == 0);
  CHECK(defaults.redacted == "redis://cache.internal/0");

  auto tls = ok("rediss://redis.example.com:6380/3");
  CHECK(tls.transport == T::tls);
  CHECK(tls.host == "redis.example.com");
  CHECK(tls.port == "6380");
  CHECK(tls.db == 3);

  auto v6 = ok("redis://[::1]:7000/2");
  CHECK(v6.host == "::1");
  CHECK(v6.port == "7000");
  CHECK(v6.db == 2);

  auto sock = ok("unix:///run/redis/redis-server.sock");
  CHECK(sock.transport == T::unix_socket);
  CHECK(sock.path == "/run/redis/redis-server.sock");
  CHECK(sock.db == 0);
  auto sock_db = ok("unix:///tmp/a@b/redis.sock?db=5");
  CHECK(sock_db.path == "/tmp/a@b/redis.sock"); // an '@' in the path is not user info
  CHECK(sock_db.db == 5);
}

TEST_CASE("redis URLs: user and password, percent-encoded, never in the redacted form") {
  auto pw = ok("redis://:p%40ss%3Aword@127.0.0.1:6379/1");
  REQUIRE(pw.password);
  CHECK(pw.password->reveal() == "p@ss:word");
  CHECK(pw.user.empty());
  CHECK(pw.redacted == "redis://:***@127.0.0.1:6379/1");

  auto acl = ok("rediss://cl-tokend:hunter2@redis.example.com/0");
  CHECK(acl.user == "cl-tokend");
  CHECK(acl.password->reveal() == "hunter2");
  CHECK(acl.redacted.find("hunter2") == std::string::npos);

  auto sock = ok("unix://:hunter2@/run/redis.sock");
  CHECK(sock.path == "/run/redis.sock");
  CHECK(sock.password->reveal() == "hunter2");
  CHECK(sock.redacted == "unix://:***@/run/redis.sock");

  auto user_only = ok("redis://someone@host/0");
  CHECK(user_only.user == "someone");
  CHECK_FALSE(user_only.password);
}

TEST_CASE("redis URLs that cannot work are refused") {
  CHECK_THAT(refused("http://127.0.0.1:6379"), Catch::Contains("must start with"));
  CHECK_THAT(refused("redis://"), Catch::Contains("no host"));
  CHECK_THAT(refused("redis://host:0/0"), Catch::Contains("port"));
  CHECK_THAT(refused("redis://host:99999/0"), Catch::Contains("port"));
  CHECK_THAT(refused("redis://host:abc/0"), Catch::Contains("port"));
  CHECK_THAT(refused("redis://host/x"), Catch::Contains("database"));
  CHECK_THAT(refused("redis://host/70000"), Catch::Contains("database"));
  CHECK_THAT(refused("redis://[::1/0"), Catch::Contains("IPv6"));
  CHECK_THAT(refused("unix://relative.sock"), Catch::Contains("absolute"));
  CHECK_THAT(refused("unix:///tmp/x.sock?database=1"), Catch::Contains("db="));
  CHECK_THAT(refused("unix:///" + std::string(120, 'x')), Catch::Contains("107"));
  const std::string bad_escape = refused("redis://:secret%zz@host/0");
  CHECK_THAT(bad_escape, Catch::Contains("password"));
  CHECK(bad_escape.find("secret") == std::string::npos);
}
