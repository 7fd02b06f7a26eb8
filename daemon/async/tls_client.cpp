#include "async/tls_client.hpp"

#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>

namespace cltoken {

namespace asio = boost::asio;

asio::ssl::context tls_client_context(const std::string& ca_file) {
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                  asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  tls.set_verify_mode(asio::ssl::verify_peer);
  if (ca_file.empty()) tls.set_default_verify_paths();
  else tls.load_verify_file(ca_file); // throws with OpenSSL's reason if unreadable
  return tls;
}

bool expect_host(SSL* ssl, const std::string& host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  if (!ec) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  return SSL_set1_host(ssl, host.c_str()) == 1 && SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
}

} // namespace cltoken
