// Which new connections stay open: per uid, in all, and the admins' reserve.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/connection_admission.hpp"
#include "core/request_slots.hpp"

using namespace cltoken;

TEST_CASE("one uid holds at most max_connections_per_peer; others still get in") {
  const ConnectionLimits limits{256, 64, 8};
  RequestSlots counted; // limit 0: the listener counts with it, the admission decides
  std::vector<RequestSlots::Slot> hostile;
  std::size_t open = 0;
  for (int i = 0; i < 1000; ++i) {
    if (admit_connection(limits, open, counted.in_progress(1000), false) != Admission::accept) continue;
    hostile.push_back(*counted.acquire(1000));
    ++open;
  }
  CHECK(hostile.size() == 64);
  CHECK(admit_connection(limits, open, counted.in_progress(1000), false) == Admission::peer_full);
  CHECK(admit_connection(limits, open, counted.in_progress(1001), false) == Admission::accept);
  CHECK(admit_connection(limits, open, counted.in_progress(0), true) == Admission::accept);
  hostile.pop_back(); // one closes: room for one more of the same uid
  --open;
  CHECK(admit_connection(limits, open, counted.in_progress(1000), false) == Admission::accept);
}

TEST_CASE("admins keep a reserve of max_connections that other peers cannot use") {
  const ConnectionLimits limits{100, 0, 8};
  CHECK(admit_connection(limits, 91, 91, false) == Admission::accept);
  CHECK(admit_connection(limits, 92, 0, false) == Admission::daemon_full); // many uids together
  CHECK(admit_connection(limits, 92, 0, true) == Admission::accept);
  CHECK(admit_connection(limits, 99, 0, true) == Admission::accept);
  CHECK(admit_connection(limits, 100, 0, true) == Admission::daemon_full);
  // The per-uid cap applies to admins too: a root service is a service like any
  // other.
  CHECK(admit_connection(ConnectionLimits{100, 4, 8}, 10, 4, true) == Admission::peer_full);
  // A reserve as large as the whole (refused by the config loader) leaves
  // nothing to others.
  CHECK(admit_connection(ConnectionLimits{8, 0, 8}, 0, 0, false) == Admission::daemon_full);
  CHECK(std::string(to_string(Admission::peer_full)) == "server.max_connections_per_peer");
}
