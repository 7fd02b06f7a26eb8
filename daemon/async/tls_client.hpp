#pragma once
// The one TLS client set-up of the daemon, shared by the auth server client and the Redis
// store: the protocol versions, whose certificates are trusted, and the host-name check.
#include <openssl/ssl.h>

#include <string>

#include <boost/asio/ssl/context.hpp>

namespace cltoken {

/// A client context: TLS 1.2 or later, the peer's certificate verified against `ca_file`,
/// or the system's trust store when it is empty. Throws with OpenSSL's reason when
/// `ca_file` cannot be read.
[[nodiscard]] boost::asio::ssl::context tls_client_context(const std::string& ca_file);

/// Makes the handshake of `ssl` check that the certificate names `host` (a name or an IP
/// address): OpenSSL's own check (RFC 6125) rather than a verify callback, so a mismatch is
/// reported as X509_V_ERR_HOSTNAME_MISMATCH and names itself. SNI only for names: RFC 6066
/// forbids IP literals there. False when OpenSSL could not be told.
[[nodiscard]] bool expect_host(SSL* ssl, const std::string& host);

} // namespace cltoken
