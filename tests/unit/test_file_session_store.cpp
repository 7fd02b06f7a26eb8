// The session journal on disk (store/file_session_store.hpp): what one daemon writes, the
// next one reads back, in a real temporary folder; the hooks run on a tiny io_context.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "core/store_crypto.hpp"
#include "core/store_identity.hpp"
#include "fake_clock.hpp"
#include "store/atomic_file.hpp"
#include "store/file_session_store.hpp"

using namespace cltoken;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

template <class T>
T run(boost::asio::awaitable<T> a) {
  boost::asio::io_context io;
  std::optional<T> out;
  std::exception_ptr failed;
  boost::asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    failed = e;
    if (!e) out.emplace(std::move(v));
  });
  io.run();
  if (failed) std::rethrow_exception(failed);
  REQUIRE(out);
  return std::move(*out);
}

void run(boost::asio::awaitable<void> a) {
  boost::asio::io_context io;
  std::exception_ptr failed;
  boost::asio::co_spawn(io, std::move(a), [&](std::exception_ptr e) { failed = e; });
  io.run();
  if (failed) std::rethrow_exception(failed);
}

/// A private folder, a config naming one sales channel, and a clock; removed at the end.
struct Scratch {
  fs::path dir;
  Config config;
  test::FakeClock clock;
  explicit Scratch(const std::string& secret = "shop-client-secret-value") {
    char tmpl[] = "/tmp/cltoken-journal-XXXXXX";
    dir = ::mkdtemp(tmpl);
    config.upstream.auth_url.text = "https://auth.example.test";
    CredentialConfig shop;
    shop.name = "shop";
    shop.kind = CredentialKind::sales_channel;
    shop.client_id = "sc-shop";
    shop.client_secret = Secret(secret);
    shop.scope = "market:id:abc";
    config.credentials.push_back(shop);
    config.store.backend = "file";
    config.store.path = (dir / "state").string();
    config.store.sessions_path = path();
  }
  ~Scratch() { fs::remove_all(dir); }
  [[nodiscard]] std::string path() const { return (dir / "sessions").string(); }
  [[nodiscard]] std::unique_ptr<FileSessionStore> store() const {
    return std::make_unique<FileSessionStore>(config.store, config.customers, clock);
  }
  [[nodiscard]] SessionSubject subject(int i) const {
    return SessionSubject{config.credentials.front(), config.upstream.auth_url.text, session_key("handle-" + std::to_string(i))};
  }
  /// Real sizes: a ~1.2 KB JWT access token and a 43-byte refresh token.
  [[nodiscard]] SessionRecord record(int i, bool refresh = true) const {
    SessionRecord r;
    r.credential = "shop";
    r.owner = ::getuid();
    const std::string n = std::to_string(i);
    r.access_token = Secret("eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9." + std::string(1150 - n.size(), 'x') + n);
    if (refresh) r.refresh_token = Secret(std::string(43 - n.size(), 'r') + n);
    r.scope = "market:id:abc";
    r.owner_id = "customer-" + n;
    r.obtained = clock.now();
    r.expires_at = clock.now() + 2h;
    r.refresh_at = clock.now() + 100min;
    return r;
  }
  [[nodiscard]] std::string text() const {
    std::ifstream in(path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void write(const std::string& text) const { std::ofstream(path(), std::ios::binary | std::ios::trunc) << text; }
  [[nodiscard]] std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(text());
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void save(FileSessionStore& s, int i, bool refresh = true) const {
    CHECK(run(s.save(subject(i), record(i, refresh))) == SessionSaved::stored);
  }
  /// Sessions 0..n-1 saved by one daemon that then stops.
  void fill(int n) const {
    auto a = store();
    a->load_all(config);
    for (int i = 0; i < n; ++i) save(*a, i);
    a->stop();
  }
};

/// Access tokens by session key.
std::map<SessionKey, std::string> tokens(const std::vector<KeptSession>& kept) {
  std::map<SessionKey, std::string> out;
  for (const auto& k : kept) out[k.key] = k.record.access_token.reveal();
  return out;
}

} // namespace

TEST_CASE("file sessions: 1,000 sessions saved by one daemon are loaded by the next") {
  Scratch s;
  {
    auto a = s.store();
    CHECK(a->load_all(s.config).empty());
    for (int i = 0; i < 1000; ++i) s.save(*a, i);
    a->stop();
  }
  CHECK(s.lines().size() == 1001);
  CHECK(s.lines().front() == R"({"format":"cl-tokend sessions","version":1})");
  auto b = s.store();
  const auto kept = b->load_all(s.config);
  REQUIRE(kept.size() == 1000);
  CHECK(b->last_load().loaded == 1000);
  const auto by_key = tokens(kept);
  for (int i = 0; i < 1000; ++i) {
    auto it = by_key.find(s.subject(i).key);
    REQUIRE(it != by_key.end());
    CHECK(it->second == s.record(i).access_token.reveal());
  }
  const KeptSession& one = kept.front();
  CHECK(one.record.credential == "shop");
  CHECK(one.record.owner == ::getuid());
  CHECK(one.record.refresh_token->size() == 43);
  CHECK(one.record.expires_at == s.clock.now() + 2h);
  // Bytes per session with real-size tokens (docs/store.md, "Customer sessions").
  const double per_session = static_cast<double>(fs::file_size(s.path())) / 1000.0;
  CHECK(per_session > 2000);
  CHECK(per_session < 2700);
  // Nothing of a token in clear.
  CHECK(s.text().find("eyJhbGci") == std::string::npos);
  CHECK(s.text().find(std::string(40, 'r')) == std::string::npos);
}

TEST_CASE("file sessions: the last line about a session wins") {
  Scratch s;
  {
    auto a = s.store();
    a->load_all(s.config);
    s.save(*a, 1);
    s.save(*a, 2);
    s.save(*a, 3);
    CHECK_FALSE(run(a->end(s.subject(1))));
    run(a->dropped(s.subject(2), false));
    SessionRecord newer = s.record(3);
    newer.access_token = Secret("the-refreshed-access-token");
    newer.generation = 2;
    CHECK(run(a->save(s.subject(3), std::move(newer))) == SessionSaved::stored);
    s.save(*a, 4);
    s.save(*a, 2);              // put after its del: back
    run(a->end(s.subject(99))); // never saved: no line
  }
  CHECK(s.lines().size() == 1 + 8);
  const auto kept = tokens(s.store()->load_all(s.config));
  CHECK(kept.size() == 3);
  CHECK_FALSE(kept.contains(s.subject(1).key));
  CHECK(kept.at(s.subject(2).key) == s.record(2).access_token.reveal());
  CHECK(kept.at(s.subject(3).key) == "the-refreshed-access-token");
  CHECK(kept.contains(s.subject(4).key));
}

TEST_CASE("file sessions: a last line cut short by a crash is ignored and cut off") {
  Scratch s;
  s.fill(3);
  const std::string whole = s.text();
  const std::string last = s.lines().back();
  std::ofstream(s.path(), std::ios::app) << last.substr(0, last.size() / 2);
  {
    auto b = s.store();
    CHECK(b->load_all(s.config).size() == 3);
    CHECK(b->last_load().torn_tail);
    CHECK(b->last_load().malformed_lines == 0);
    CHECK(s.text() == whole); // cut off before anything is appended
    s.save(*b, 7);
  }
  auto c = s.store();
  CHECK(c->load_all(s.config).size() == 4);
  CHECK_FALSE(c->last_load().torn_tail);
  CHECK(c->last_load().malformed_lines == 0);
}

TEST_CASE("file sessions: a malformed line in the middle is skipped and counted, an altered record refused") {
  Scratch s;
  s.fill(4);
  auto lines = s.lines();
  lines[2] = "{\"put\": garbage";
  // One character of a sealed record changed: its line parses, its seal fails.
  const auto at = lines[3].find("\"sealed\":\"") + 40;
  lines[3][at] = lines[3][at] == 'A' ? 'B' : 'A';
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  s.write(text);
  auto b = s.store();
  const auto kept = b->load_all(s.config);
  CHECK(kept.size() == 2);
  CHECK(b->last_load().malformed_lines == 1);
  CHECK(b->last_load().unopened == 1);
  CHECK(tokens(kept).contains(s.subject(0).key));
  CHECK(tokens(kept).contains(s.subject(3).key));
}

TEST_CASE("file sessions: sessions of a changed credential identity or key are not loaded") {
  Scratch s;
  s.fill(5);
  const std::string written = s.text();
  SECTION("another client secret: another identity, counted, not opened") {
    Scratch other("another-client-secret");
    other.config.store.sessions_path = s.path();
    auto b = FileSessionStore(other.config.store, other.config.customers, s.clock);
    CHECK(b.load_all(other.config).empty());
    CHECK(b.last_load().other_identity == 5);
  }
  SECTION("another scope: another identity") {
    s.config.credentials.front().scope = "market:id:xyz";
    auto b = s.store();
    CHECK(b->load_all(s.config).empty());
    CHECK(b->last_load().other_identity == 5);
  }
  SECTION("the identity in clear edited to match another key: the seal refuses it") {
    const Secret other_secret("another-client-secret");
    CredentialConfig c = s.config.credentials.front();
    c.client_secret = other_secret;
    const std::string old_identity =
        identity_fingerprint(Secret("shop-client-secret-value"), s.config.credentials.front(), s.config.upstream.auth_url.text);
    const std::string new_identity = identity_fingerprint(other_secret, c, s.config.upstream.auth_url.text);
    std::string text = written;
    for (auto p = text.find(old_identity); p != std::string::npos; p = text.find(old_identity, p))
      text.replace(p, old_identity.size(), new_identity);
    s.write(text);
    s.config.credentials.front() = c;
    auto b = s.store();
    CHECK(b->load_all(s.config).empty());
    CHECK(b->last_load().other_identity == 0);
    CHECK(b->last_load().unopened == 5);
  }
  SECTION("a credential gone from the config") {
    s.config.credentials.front().name = "other";
    auto b = s.store();
    CHECK(b->load_all(s.config).empty());
    CHECK(b->last_load().no_credential == 5);
  }
}

TEST_CASE("file sessions: expired sessions are not loaded") {
  Scratch s;
  {
    auto a = s.store();
    a->load_all(s.config);
    s.save(*a, 1, /*refresh=*/false); // lasts as long as its access token: 2 hours
    s.save(*a, 2, /*refresh=*/true);  // lasts as long as its refresh token: 2 weeks
  }
  s.clock.advance(3h);
  {
    auto b = s.store();
    const auto kept = tokens(b->load_all(s.config));
    CHECK(kept.size() == 1);
    CHECK(kept.contains(s.subject(2).key));
    CHECK(b->last_load().expired == 1);
  }
  s.clock.advance(14 * 24h);
  auto c = s.store();
  CHECK(c->load_all(s.config).empty());
  CHECK(c->last_load().expired == 2); // the one b did not load is still in the file: not compacted yet
  // An expired session is not written at all.
  const auto size = fs::file_size(s.path());
  SessionRecord old = s.record(5, false);
  old.expires_at = s.clock.now() - 1s;
  old.obtained = s.clock.now() - 2h;
  CHECK(run(c->save(s.subject(5), std::move(old))) == SessionSaved::stored);
  CHECK(fs::file_size(s.path()) == size);
}

TEST_CASE("file sessions: compaction keeps exactly the live sessions and shrinks the journal") {
  Scratch s;
  auto a = s.store();
  a->load_all(s.config);
  for (int i = 0; i < 1000; ++i) s.save(*a, i);
  const auto full = fs::file_size(s.path());
  // 1,000 puts and k dels: dead = 2k, live = 1000 - k; due when 2k > 1000 - k + 1000.
  for (int i = 0; i < 667; ++i) run(a->end(s.subject(i)));
  CHECK(s.lines().size() == 1 + 333);
  CHECK(a->journal_bytes() == fs::file_size(s.path()));
  CHECK(fs::file_size(s.path()) < full / 2);
  CHECK(file_mode(s.path()) == 0600);
  for (int i = 667; i < 700; ++i) run(a->end(s.subject(i)));
  s.save(*a, 5000);
  CHECK(s.lines().size() == 1 + 333 + 33 + 1);
  auto b = s.store();
  const auto kept = tokens(b->load_all(s.config));
  CHECK(kept.size() == 301);
  for (int i = 0; i < 1000; ++i) CHECK(kept.contains(s.subject(i).key) == (i >= 700));
  CHECK(kept.contains(s.subject(5000).key));
}

TEST_CASE("file sessions: compaction drops expired sessions") {
  Scratch s;
  auto a = s.store();
  a->load_all(s.config);
  for (int i = 0; i < 10; ++i) s.save(*a, i, /*refresh=*/false);
  s.clock.advance(3h);
  for (int i = 10; i < 1100; ++i) s.save(*a, i % 2 == 0 ? 10 : 11); // replaced again and again
  CHECK(a->live() == 2);
  CHECK(s.lines().size() < 1100);
  auto b = s.store();
  CHECK(b->load_all(s.config).size() == 2);
  CHECK(b->last_load().expired == 0);
}

TEST_CASE("file sessions: a file that is not a journal is moved aside and a new one started") {
  Scratch s;
  const std::string content =
      GENERATE(std::string("hello, not a journal\n"), std::string(R"({"format":"cl-tokend sessions","version":2})") + "\n",
               std::string("{\"format\":\"cl-tokend state\",\"version\":1}\n"));
  s.write(content);
  auto a = s.store();
  CHECK(a->load_all(s.config).empty());
  const auto& report = a->last_load();
  CHECK_FALSE(report.refused.empty());
  REQUIRE_FALSE(report.moved_to.empty());
  CHECK(report.moved_to.starts_with(s.path() + ".refused-"));
  std::ifstream aside(report.moved_to, std::ios::binary);
  std::stringstream kept;
  kept << aside.rdbuf();
  CHECK(kept.str() == content); // never destroyed
  CHECK(s.lines() == std::vector<std::string>{R"({"format":"cl-tokend sessions","version":1})"});
  s.save(*a, 1);
  CHECK(s.store()->load_all(s.config).size() == 1);
}

TEST_CASE("file sessions: a journal larger than customers.max_sessions allows is moved aside") {
  Scratch s;
  s.config.customers.max_sessions = 1;
  std::string text = render_journal_header();
  const std::string filler = std::string(1000, ' ') + "\n";
  while (text.size() <= max_journal_size(1)) text += filler;
  s.write(text);
  auto a = s.store();
  CHECK(a->load_all(s.config).empty());
  CHECK(a->last_load().refused.find("max_sessions") != std::string::npos);
  CHECK_FALSE(a->last_load().moved_to.empty());
  CHECK(fs::file_size(a->last_load().moved_to) == text.size());
}

TEST_CASE("file sessions: a header cut short is a new journal") {
  Scratch s;
  s.write(R"({"format":"cl-tok)");
  auto a = s.store();
  CHECK(a->load_all(s.config).empty());
  CHECK(a->last_load().refused.empty());
  s.save(*a, 1);
  CHECK(s.lines().size() == 2);
  CHECK(s.store()->load_all(s.config).size() == 1);
}

TEST_CASE("file sessions: the journal is mode 0600, and one with a wider mode is narrowed") {
  Scratch s;
  {
    auto a = s.store();
    a->load_all(s.config);
    s.save(*a, 1);
    CHECK(file_mode(s.path()) == 0600);
  }
  ::chmod(s.path().c_str(), 0644);
  auto b = s.store();
  CHECK(b->load_all(s.config).size() == 1);
  CHECK(file_mode(s.path()) == 0600);
}

TEST_CASE("file sessions: a journal others could write is neither read nor written") {
  Scratch s;
  {
    auto a = s.store();
    a->load_all(s.config);
    s.save(*a, 1);
  }
  ::chmod(s.path().c_str(), 0666);
  const std::string before = s.text();
  auto b = s.store();
  CHECK(b->load_all(s.config).empty());
  CHECK_FALSE(b->last_load().refused.empty());
  CHECK(b->last_load().moved_to.empty());
  CHECK(run(b->save(s.subject(2), s.record(2))) == SessionSaved::unreachable);
  CHECK(s.text() == before);
}
