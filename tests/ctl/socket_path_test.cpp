#include <catch2/catch.hpp>

#include "socket_path.hpp"

using cltoken::ctl::resolve_socket_path;

TEST_CASE("socket path: --socket beats the environment, which beats the default", "[socket]") {
  CHECK(resolve_socket_path(std::string("/tmp/flag.sock"), "/tmp/env.sock") == "/tmp/flag.sock");
  CHECK(resolve_socket_path(std::string("/tmp/flag.sock"), nullptr) == "/tmp/flag.sock");
  CHECK(resolve_socket_path(std::nullopt, "/tmp/env.sock") == "/tmp/env.sock");
  CHECK(resolve_socket_path(std::nullopt, nullptr) == "/run/cl-tokend/cl-tokend.sock");
}

TEST_CASE("socket path: an empty CL_TOKEND_SOCKET counts as unset", "[socket]") {
  CHECK(resolve_socket_path(std::nullopt, "") == "/run/cl-tokend/cl-tokend.sock");
}
