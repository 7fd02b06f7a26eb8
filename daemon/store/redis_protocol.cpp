#include "store/redis_protocol.hpp"

#include <hiredis.h>
#include <openssl/crypto.h>

#include <stdexcept>

namespace cltoken {

std::string format_redis_command(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (n < 0 || cmd == nullptr) throw std::runtime_error("cannot format a Redis command (out of memory)");
  std::string out(cmd, static_cast<std::size_t>(n));
  // AUTH carries the password: leave no copy in freed memory.
  OPENSSL_cleanse(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  return out;
}

struct RedisReplyReader::Impl {
  redisReader* reader = nullptr;
};

RedisReplyReader::RedisReplyReader() : impl_(std::make_unique<Impl>()) {
  impl_->reader = redisReaderCreate();
  if (impl_->reader == nullptr) throw std::runtime_error("cannot create a Redis reply reader (out of memory)");
}

RedisReplyReader::~RedisReplyReader() { redisReaderFree(impl_->reader); }

void RedisReplyReader::feed(std::string_view bytes) {
  if (redisReaderFeed(impl_->reader, bytes.data(), bytes.size()) != REDIS_OK)
    throw std::runtime_error(std::string("Redis protocol error: ") + impl_->reader->errstr);
}

namespace {

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
  case REDIS_REPLY_INTEGER:
    out.type = RedisReply::Type::integer;
    out.integer = r->integer;
    break;
  case REDIS_REPLY_STRING:
    out.type = RedisReply::Type::string;
    out.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_STATUS:
    out.type = RedisReply::Type::status;
    out.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_ERROR:
    out.type = RedisReply::Type::error;
    out.str.assign(r->str, r->len);
    break;
  case REDIS_REPLY_ARRAY:
    out.type = RedisReply::Type::array;
    for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
    break;
  default: out.type = RedisReply::Type::nil;
  }
  return out;
}

} // namespace

std::optional<RedisReply> RedisReplyReader::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(impl_->reader, &raw) != REDIS_OK)
    throw std::runtime_error(std::string("Redis protocol error: ") + impl_->reader->errstr);
  if (raw == nullptr) return std::nullopt;
  auto* reply = static_cast<redisReply*>(raw);
  RedisReply out = convert(reply);
  freeReplyObject(reply);
  return out;
}

} // namespace cltoken
